"""``python -m synth audio`` with the cartoon path on the real 30 s two-person phone call.

The call (16 kHz mono wav, RTTM turns, STM transcript) is in data/samples/pyannote_call (MIT, see
the LICENSE.md there). Diane speaks from 18.05 s and Sheila backchannels at 18.15 s.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from synth_helpers import run_synth

# Clips are muxed with moviepy, which the synth extra installs.
pytest.importorskip("moviepy")

CALL = Path(__file__).resolve().parents[1] / "data" / "samples" / "pyannote_call"


def _call_args(out: Path, *extra: str) -> list[str]:
    return ["audio", "--audio", str(CALL / "sample.wav"), "--turns", str(CALL / "sample.rttm"),
            "--transcript", str(CALL / "sample.stm"), "--out", str(out), "--width", "64", "--height", "64",
            *extra]


def _records(out: Path) -> dict[str, dict]:
    lines = (out / "manifest.jsonl").read_text().splitlines()
    return {record["id"]: record for record in map(json.loads, lines)}


def test_call_windows_end_at_backchannel(tmp_path, capsys):
    out = tmp_path / "out"
    status, stdout, _ = run_synth(_call_args(out, "--points", "backchannels"), capsys)

    assert status == 0, stdout
    records = _records(out)
    assert set(records) == {"reference/sample-Diane", "clip/sample/Diane/000018150"}
    clip = records["clip/sample/Diane/000018150"]
    assert clip["start"] == pytest.approx(16.65)
    # Only Diane's turn from 18.05 s drives her portrait; Sheila's speech before it is zeroed.
    assert clip["tracks"][0]["speech_intervals"] == [[18.05, 21.49]]
    prompt = records["reference/sample-Diane"]["prompt"]
    assert prompt.startswith("A bust image of ")
    assert prompt.endswith("photo-realistic.")
    with av.open(str(out / clip["output"])) as container:
        assert [stream.type for stream in container.streams] == ["video", "audio"]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == 45
    # Diane is silent until 18.05 s (frame 42): the mouth stays closed, then opens.
    mouth = [np.asarray(frame[32:40, 26:38], dtype=int) for frame in frames]  # (8, 12, 3) around the lips
    closed = [np.abs(patch - mouth[0]).mean() for patch in mouth[:42]]
    assert max(closed) < 2.0  # H.264 noise only
    assert np.abs(mouth[44] - mouth[0]).mean() > 5.0


def test_call_conversation_video_shows_speaker(tmp_path, capsys):
    out = tmp_path / "out"
    status, _, _ = run_synth(_call_args(out, "--clips", "conversation", "--fps", "10"), capsys)

    assert status == 0
    clip = _records(out)["conversation/sample"]
    assert clip["num_frames"] == 300
    references = {name: np.asarray(av.open(str(out / f"references/sample-{name}.png")).decode(video=0)
                                   .__next__().to_ndarray(format="rgb24"), dtype=int)
                  for name in ("Diane", "Sheila")}
    with av.open(str(out / clip["output"])) as container:
        durations = [float(stream.duration * stream.time_base) for stream in container.streams]
        frames = [frame.to_ndarray(format="rgb24").astype(int) for frame in container.decode(video=0)]
    assert durations == pytest.approx([30.0, 30.0], abs=0.1)

    def shown(frame_index: int) -> str:
        # The backgrounds differ: compare a corner patch with each reference.
        patch = frames[frame_index][:8, :8]
        return min(references, key=lambda name: np.abs(references[name][:8, :8] - patch).mean())

    assert shown(130) == "Diane"  # 13 s: "This is Diane in New Jersey"
    assert shown(160) == "Sheila"  # 16 s: "And I'm Sheila in Texas"
    assert shown(250) == "Sheila"  # 25 s: Sheila's long turn


def test_call_speaker_info_fills_prompt(tmp_path, capsys):
    info = tmp_path / "speakers.csv"
    info.write_text("speaker,sex,age\nDiane,female,45\nSheila,,\n")
    out = tmp_path / "out"
    status, _, _ = run_synth(_call_args(out, "--points", "backchannels", "--speaker-info", str(info)), capsys)
    assert status == 0
    diane = _records(out)["reference/sample-Diane"]
    assert diane["prompt"].startswith("A bust image of a 45-year-old ")
    assert diane["prompt"].split(", ")[0].endswith(" woman")
    assert diane["profile"]["metadata_source"] == "metadata"


def test_call_unknown_speaker_info_rejected(tmp_path, capsys):
    info = tmp_path / "speakers.csv"
    info.write_text("speaker,sex,age\nspeaker90,female,45\n")
    status, _, stderr = run_synth(_call_args(tmp_path / "out", "--speaker-info", str(info)), capsys)
    assert status == 2
    assert "speakers ['speaker90'] do not occur" in stderr
    assert "Diane, Sheila" in stderr


def test_call_stm_turns_drive_sides(tmp_path, capsys):
    out = tmp_path / "out"
    arguments = ["audio", "--audio", str(CALL / "sample.wav"), "--turns", str(CALL / "sample.stm"),
                 "--out", str(out), "--clips", "sides", "--fps", "10", "--width", "32", "--height", "32"]
    status, _, _ = run_synth(arguments, capsys)
    assert status == 0
    track = _records(out)["side/sample/Diane"]["tracks"][0]
    assert track["channel"] is None
    assert track["speech_intervals"][0] == [6.68, 7.16]  # the STM utterance "Hello?"
    assert len(track["speech_intervals"]) == 8  # Diane's eight STM utterances
