"""Checks that synth makes before and while it runs: inputs, empty plans, truncated audio, setup errors."""

from __future__ import annotations

import json
import logging
import wave
from pathlib import Path

import numpy as np
import pytest
from synth_helpers import SWITCHBOARD_RATE, build_fake_switchboard, run_synth, speech_like, sphere_bytes

from camabc_core.labels import build_label_scheme
from camabc_core.recipe import SamplingSection
from camabc_core.records import BackchannelEvent, Conversation, Word
from camabc_core.sampling import build_backchannel_samples
from synth.echomimic import DIR_ENV, PYTHON_ENV
from synth.errors import SynthError
from synth.timing import frames_per_window

pytest.importorskip("moviepy")

CALL = Path(__file__).resolve().parents[1] / "data" / "samples" / "pyannote_call"
SMALL = ["--width", "64", "--height", "48"]


def _manifest(out: Path) -> dict[str, dict]:
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return {record["id"]: record for record in records}


def _write_wav(path: Path, channels: int, seconds: float, rate: int = 8000) -> Path:
    samples = np.zeros((round(seconds * rate), channels), dtype="<i2")
    with wave.open(str(path), "wb") as output:
        output.setnchannels(channels)
        output.setsampwidth(2)
        output.setframerate(rate)
        output.writeframes(samples.tobytes())
    return path


def test_truncated_audio_fails_late_clips(tmp_path, capsys):
    # A valid SPHERE header followed by 0.12 s of samples, while the word alignments run to 5.5 s.
    short = np.stack([speech_like(0.12, SWITCHBOARD_RATE, [(0.0, 0.12)])] * 2)
    root = build_fake_switchboard(tmp_path / "swbd", audio=sphere_bytes(short, SWITCHBOARD_RATE))
    out = tmp_path / "out"

    status, stdout, _ = run_synth(["swbd", "--swbd-root", str(root), "--out", str(out), *SMALL], capsys)

    assert status == 1
    clips = {job_id: record for job_id, record in _manifest(out).items() if job_id.startswith("clip/")}
    assert clips
    for job_id, record in clips.items():
        if record["start"] >= 0.12:
            assert record["status"] == "failed", job_id
            assert "sw02001.sph: the audio lasts 0.12 s" in record["error"]
            span = f"covers {record['start']:.2f} to {record['end']:.2f} s, wholly past its end"
            assert span in record["error"]
            assert f"{job_id}: " in stdout
        else:
            assert record["status"] == "done", job_id
            assert f"runs to {record['end']:.2f} s" in record["warning"]
    # The backchannel at 1.60 s gives the window 0.10 to 1.60 s, which starts inside the 0.12 s.
    assert "warning" in clips["clip/sw2001/A/000001600"]
    assert "jobs done with a warning (" in stdout
    failed = sum(1 for record in clips.values() if record["status"] == "failed")
    assert f"{failed} failed" in stdout
    assert failed >= 1


def test_dry_run_explains_empty_plan(tmp_path, capsys):
    args = ["audio", "--audio", str(CALL / "sample.wav"), "--turns", str(CALL / "sample.stm"),
            "--transcript", str(CALL / "sample.stm"), "--out", str(tmp_path / "out"), "--dry-run"]

    status, stdout, _ = run_synth(args, capsys)

    assert status == 0
    assert "clips: 0 jobs (no backchannels were found in the turns or transcript" in stdout
    assert "--points context" in stdout
    assert "reference: 0 jobs" in stdout
    assert not (tmp_path / "out").exists()


def test_missing_audio_rejected_up_front(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["audio", "--audio", str(tmp_path / "missing.wav"), "--turns", str(CALL / "sample.rttm"),
            "--out", str(out), *SMALL]

    status, _, stderr = run_synth(args, capsys)

    assert status == 2
    assert f"--audio {tmp_path / 'missing.wav'}: file not found" in stderr
    assert not out.exists()


def test_undecodable_audio_rejected_up_front(tmp_path, capsys):
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF" + bytes(range(256)) * 8)
    args = ["audio", "--audio", str(garbage), "--turns", str(CALL / "sample.rttm"),
            "--out", str(tmp_path / "out"), *SMALL]

    status, _, stderr = run_synth(args, capsys)

    assert status == 2
    assert f"--audio {garbage}: " in stderr
    assert not (tmp_path / "out").exists()


def test_missing_swbd_root_not_found(tmp_path, capsys):
    status, _, stderr = run_synth(["swbd", "--swbd-root", str(tmp_path / "none"), "--out",
                                   str(tmp_path / "out"), "--dry-run"], capsys)

    assert status == 2
    assert f"--swbd-root {tmp_path / 'none'}: folder not found" in stderr


def test_channel_speakers_fewer_than_channels_warns(tmp_path, capsys, caplog):
    audio = _write_wav(tmp_path / "three.wav", channels=3, seconds=1.0)
    args = ["audio", "--audio", str(audio), "--turns", str(CALL / "sample.rttm"), "--transcript",
            str(CALL / "sample.stm"), "--channel-speakers", "Diane,Sheila", "--out", str(tmp_path / "out"),
            "--dry-run"]

    with caplog.at_level(logging.WARNING, logger="synth"):
        status, _, _ = run_synth(args, capsys)

    assert status == 0
    assert "has 3 audio channels but --channel-speakers names 2 (Diane,Sheila); channel(s) 3 are ignored" \
        in caplog.text


def test_channel_speakers_more_than_channels_rejected(tmp_path, capsys):
    audio = _write_wav(tmp_path / "mono.wav", channels=1, seconds=1.0)
    args = ["audio", "--audio", str(audio), "--turns", str(CALL / "sample.rttm"), "--transcript",
            str(CALL / "sample.stm"), "--channel-speakers", "Diane,Sheila", "--out", str(tmp_path / "out"),
            "--dry-run"]

    status, _, stderr = run_synth(args, capsys)

    assert status == 2
    assert "--channel-speakers names 2 speakers but" in stderr
    assert "has 1 audio channel(s)" in stderr


def test_dry_run_reports_missing_echomimic(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(PYTHON_ENV, raising=False)
    monkeypatch.delenv(DIR_ENV, raising=False)
    root = build_fake_switchboard(tmp_path / "swbd")

    status, stdout, _ = run_synth(["swbd", "--swbd-root", str(root), "--out", str(tmp_path / "out"),
                                   "--animator", "echomimic", "--dry-run"], capsys)

    assert status == 0
    assert "problem: animator 'echomimic' cannot run, so every clip would fail: EchoMimic's python " \
           "interpreter is not set" in stdout


def test_missing_echomimic_reported_once(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(PYTHON_ENV, raising=False)
    monkeypatch.delenv(DIR_ENV, raising=False)
    root = build_fake_switchboard(tmp_path / "swbd")
    out = tmp_path / "out"

    status, stdout, _ = run_synth(["swbd", "--swbd-root", str(root), "--out", str(out), *SMALL,
                                   "--animator", "echomimic", "--limit", "3"], capsys)

    assert status == 1
    clips = [record for job_id, record in _manifest(out).items() if job_id.startswith("clip/")]
    assert len(clips) == 3
    first, *others = clips
    assert first["error"].startswith("EchoMimic's python interpreter is not set")
    for record in others:
        assert record["error"] == f"the animator cannot run, as reported for {first['id']}"
    assert stdout.count(PYTHON_ENV) == 1


def test_window_float_error_is_whole():
    assert frames_per_window(0.30000000000000004, 10) == 3
    assert frames_per_window(0.7, 30) == 21
    with pytest.raises(SynthError, match=r"a 1\.5 s window at 25 fps has 37\.5 frames, not a whole number"):
        frames_per_window(1.5, 25)


def test_nobc_without_listener_gives_own_warning(caplog):
    # Only A is a speaker of the conversation, so A's word ends have no listener for a NoBC point.
    words = tuple(Word("A", 0.5 * index, 0.5 * index + 0.4, f"w{index}") for index in range(10))
    conversation = Conversation("c1", words, (BackchannelEvent("B", 2.45, 2.7, "BC"),), ("A",))
    scheme = build_label_scheme("binary", {"BC": "BC"})

    with caplog.at_level(logging.WARNING, logger="camabc_core"):
        samples = build_backchannel_samples([conversation], scheme, SamplingSection(), 0)

    assert [(sample.time, sample.label) for sample in samples] == [(2.45, 1)]
    assert "1 NoBC points were dropped because their conversation has no second speaker" in caplog.text
    assert "nobc_tolerance_seconds" not in caplog.text
