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


#: Largest distance of window × fps from a whole number that still counts as whole. It absorbs
#: float error such as 0.30000000000000004 × 10, which is 3 frames to every printed digit.
WHOLE_FRAME_TOLERANCE = 1e-6


def _whole_frames(window_seconds: float, fps: int) -> int | None:
    """Return window × fps as an int when it is a whole number within the tolerance, else None."""
    frames = window_seconds * fps
    nearest = round(frames)
    return nearest if abs(frames - nearest) <= WHOLE_FRAME_TOLERANCE else None


def frames_per_window(window_seconds: float, fps: int) -> int:
    """Return the number of frames in a window, raising ``SynthError`` unless it is a whole number."""
    if fps <= 0:
        raise SynthError(f"frame rate must be a positive integer, got {fps}")
    if not window_seconds > 0 or not math.isfinite(window_seconds):
        raise SynthError(f"window length must be a positive number of seconds, got {window_seconds}")
    frames = _whole_frames(window_seconds, fps)
    if frames is None:
        working = [rate for rate in COMMON_FRAME_RATES if _whole_frames(window_seconds, rate) is not None]
        hint = (f"use --fps {' or '.join(str(rate) for rate in working)}" if working
                else "change --window so that window × fps is a whole number")
        raise SynthError(
            f"invalid frame rate: a {window_seconds!r} s window at {fps} fps has "
            f"{window_seconds * fps!r} frames, not a whole number, so the clip's video and audio "
            f"durations would differ; {hint}"
        )
    return frames


def frames_in_duration(duration_seconds: float, fps: int) -> int:
    """Return the whole frames that fit in ``duration_seconds`` (a conversation side), at least 1."""
    # A tiny tolerance keeps 29.999999 frames (float error on an exact length) from losing a frame.
    return max(1, math.floor(duration_seconds * fps + 1e-6))


def samples_for_frames(num_frames: int, fps: int, sample_rate: int) -> int:
    """Return the audio samples that last as long as ``num_frames`` video frames (rounded)."""
    return round(Fraction(num_frames * sample_rate, fps))
