"""Small media files written by the tests that decode audio."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np


def write_wav(path: Path, channels: np.ndarray, sample_rate: int) -> Path:
    """Write int16 PCM from float channels (C, N) in [-1, 1] with the standard-library wave module."""
    pcm = np.round(channels.T * 32767).astype("<i2")
    with wave.open(str(path), "wb") as output:
        output.setnchannels(channels.shape[0])
        output.setsampwidth(2)
        output.setframerate(sample_rate)
        output.writeframes(pcm.tobytes())
    return path
