"""Clip timing and muxing: whole frames per window, one video and one audio stream of equal length."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from synth.errors import SynthError
from synth.media import atomic_output, write_clip, write_wav
from synth.timing import frames_in_duration, frames_per_window, samples_for_frames


def _stream_durations(path: Path) -> dict[str, list[float]]:
    durations: dict[str, list[float]] = {"video": [], "audio": []}
    with av.open(str(path)) as container:
        for stream in container.streams:
            durations[stream.type].append(float(stream.duration * stream.time_base))
    return durations


def test_frames_per_window_whole_frames():
    assert frames_per_window(1.5, 30) == 45
    assert frames_per_window(1.5, 24) == 36
    assert frames_per_window(0.8, 25) == 20


def test_frames_per_window_rejects_fraction():
    with pytest.raises(SynthError) as raised:
        frames_per_window(1.5, 25)
    message = str(raised.value)
    assert "37.5 frames" in message
    assert "--fps 24 or 30" in message


def test_frames_in_duration_and_samples():
    assert frames_in_duration(30.0, 30) == 900
    assert frames_in_duration(2.999, 30) == 89
    # 45 frames at 30 fps last 1.5 s: 24000 samples at 16 kHz, as in a data-pipeline window.
    assert samples_for_frames(45, 30, 16000) == 24000
    assert samples_for_frames(1, 30, 16000) == 533


def test_tone_clip_has_two_equal_streams(tmp_path):
    pytest.importorskip("moviepy")
    rate, fps, num_frames = 16000, 25, 50
    times = np.arange(2 * rate) / rate
    write_wav(0.3 * np.sin(2 * np.pi * 440 * times), rate, tmp_path / "tone.wav")
    frames = (np.full((48, 64, 3), index * 4, dtype=np.uint8) for index in range(num_frames))
    target = tmp_path / "clip.mp4"

    write_clip(target, frames, num_frames=num_frames, fps=fps, size=(64, 48),
               audio_path=tmp_path / "tone.wav")

    durations = _stream_durations(target)
    assert len(durations["video"]) == 1
    assert len(durations["audio"]) == 1
    assert durations["video"][0] == pytest.approx(2.0, abs=1 / fps)
    assert durations["audio"][0] == pytest.approx(2.0, abs=1 / fps)
    with av.open(str(target)) as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(decoded) == num_frames
    assert decoded[0].shape == (48, 64, 3)


def test_too_few_frames_leave_no_file(tmp_path):
    pytest.importorskip("moviepy")
    write_wav(np.zeros(16000), 16000, tmp_path / "silence.wav")
    frames = (np.zeros((32, 32, 3), dtype=np.uint8) for _ in range(10))
    target = tmp_path / "clip.mp4"

    with pytest.raises(SynthError, match="yielded 10 frames, 30 were requested"):
        write_clip(target, frames, num_frames=30, fps=30, size=(32, 32), audio_path=tmp_path / "silence.wav")

    assert not target.exists()
    assert list(tmp_path.glob("*.mp4")) == []


def test_odd_size_rejected(tmp_path):
    pytest.importorskip("moviepy")
    with pytest.raises(SynthError, match="even width and height"):
        write_clip(tmp_path / "clip.mp4", iter([]), num_frames=1, fps=30, size=(33, 32),
                   audio_path=tmp_path / "missing.wav")


def test_atomic_output_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "manifest.jsonl"
    target.write_text("old\n")

    with pytest.raises(RuntimeError), atomic_output(target) as temporary:
        temporary.write_text("half written")
        raise RuntimeError("killed")

    assert target.read_text() == "old\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["manifest.jsonl"]
