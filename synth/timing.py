"""Frame counts of clips: every clip has a whole number of frames.

A window of ``n`` seconds at ``fps`` frames per second must contain ``n × fps`` whole frames, otherwise
the video and its audio cannot have the same duration (1.5 s at 25 fps would need 37.5 frames).
"""

from __future__ import annotations

import math
from fractions import Fraction

from synth.errors import SynthError

# Frame rates offered in the error message when a window does not hold whole frames.
COMMON_FRAME_RATES: tuple[int, ...] = (24, 25, 30, 48, 50, 60)


def _exact(seconds: float) -> Fraction:
    # Window lengths are written in decimal (1.5, 0.8), so read them as the decimal the user typed.
    return Fraction(repr(float(seconds)))


def frames_per_window(window_seconds: float, fps: int) -> int:
    """Return the number of frames in a window, raising ``SynthError`` unless it is a whole number."""
    if fps <= 0:
        raise SynthError(f"frame rate must be a positive integer, got {fps}")
    if window_seconds <= 0:
        raise SynthError(f"window length must be positive, got {window_seconds} s")
    frames = _exact(window_seconds) * fps
    if frames.denominator != 1:
        working = [rate for rate in COMMON_FRAME_RATES if (_exact(window_seconds) * rate).denominator == 1]
        hint = (f"use --fps {' or '.join(str(rate) for rate in working)}" if working
                else "change --window so that window × fps is a whole number")
        raise SynthError(
            f"invalid frame rate: a {window_seconds:g} s window at {fps} fps has {float(frames):g} "
            f"frames, not a whole number, so the clip's video and audio durations would differ; {hint}"
        )
    return int(frames)


def frames_in_duration(duration_seconds: float, fps: int) -> int:
    """Return the whole frames that fit in ``duration_seconds`` (a conversation side), at least 1."""
    # A tiny tolerance keeps 29.999999 frames (float error on an exact length) from losing a frame.
    return max(1, math.floor(duration_seconds * fps + 1e-6))


def samples_for_frames(num_frames: int, fps: int, sample_rate: int) -> int:
    """Return the audio samples that last as long as ``num_frames`` video frames (rounded)."""
    return round(Fraction(num_frames * sample_rate, fps))
