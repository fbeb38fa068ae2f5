"""Limits on prediction points, checked before any model loads (this module does not import torch).

A timeline's grid is at most ``MAX_POINTS_PER_SECOND`` points per second of media, and a timeline
has at most ``MAX_POINTS`` points in all.
"""

from __future__ import annotations

import math

from camabc_core.errors import CamabcError

#: Finest grid: 100 points per second of media. Windows are 1.5 s long by default, so a finer grid
#: only repeats nearly the same input at a large cost in time.
MAX_POINTS_PER_SECOND = 100
MIN_STEP_SECONDS = 1.0 / MAX_POINTS_PER_SECOND
#: Maximum number of prediction points in one timeline (about 2.8 hours of media at the finest grid).
MAX_POINTS = 1_000_000


def check_step(step: float) -> None:
    """Raise ``CamabcError`` unless ``step`` is a finite grid spacing of at least ``MIN_STEP_SECONDS``."""
    if not math.isfinite(step) or step < MIN_STEP_SECONDS:
        raise CamabcError(
            f"--step must be a finite number of seconds >= {MIN_STEP_SECONDS:g} (at most "
            f"{MAX_POINTS_PER_SECOND} points per second), got {step}; use 0.1 for a fine timeline, or 0 "
            f"to predict at the speaker's word ends only"
        )


def check_point_count(duration: float, step: float | None, word_ends: int = 0) -> None:
    """Raise ``CamabcError`` when the grid over ``duration`` plus ``word_ends`` passes ``MAX_POINTS``."""
    count = word_ends + (int(duration / step) if step else 0)
    if count > MAX_POINTS:
        smallest = duration / max(MAX_POINTS - word_ends, 1)
        # Rounded up to 3 significant digits, so that the suggested step does fit.
        scale = 10.0 ** (math.floor(math.log10(smallest)) - 2)
        smallest = math.ceil(smallest / scale) * scale
        raise CamabcError(
            f"{count} prediction points over {duration:.1f} s of media exceed the limit of {MAX_POINTS}; "
            f"use --step {smallest:.3g} or larger"
        )
