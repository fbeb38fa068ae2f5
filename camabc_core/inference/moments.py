"""Backchannel moments: the points of a timeline where a listener should react, and how.

The rule, applied to the time-sorted prediction points of one timeline:

1. The backchannel score of a point is ``1 - P(NoBC)``, the probability that the listener reacts.
2. A point is a candidate when its score is at least ``threshold`` and is a local maximum: not lower
   than the previous point and higher than the next one (the last point of a plateau wins).
3. Candidates are kept from the highest score down. A candidate closer than ``min_gap_seconds`` to an
   already kept moment is dropped, so one burst of high scores gives one moment.
4. The class of a moment is the most probable non-NoBC class at that point ("BC" in the binary
   scheme; Continuer, Understanding or Empathy in the four-class one).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from camabc_core.labels import NOBC

DEFAULT_THRESHOLD = 0.5
DEFAULT_MIN_GAP_SECONDS = 1.0


@attrs.frozen
class BackchannelMoment:
    """A predicted backchannel: at ``time`` seconds the listener should react with ``class_name``."""

    time: float
    #: 1 - P(NoBC) at this point.
    score: float
    class_name: str
    #: P(class_name) at this point.
    class_probability: float
    #: Index of the point in the timeline it was taken from.
    point_index: int


def backchannel_scores(probabilities: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """Return ``1 - P(NoBC)`` for every row of ``probabilities`` (N, C) as an array (N,)."""
    if NOBC not in classes:
        raise ValueError(f"label classes {list(classes)} have no {NOBC!r} class; cannot score backchannels")
    return 1.0 - probabilities[:, list(classes).index(NOBC)]


def local_maxima(scores: np.ndarray) -> list[int]:
    """Indices whose score is >= the previous one and > the next one (ends compare to one side only)."""
    maxima = []
    for index in range(len(scores)):
        rises = index == 0 or scores[index] >= scores[index - 1]
        falls = index == len(scores) - 1 or scores[index] > scores[index + 1]
        if rises and falls:
            maxima.append(index)
    return maxima


def detect_moments(
    times: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_gap_seconds: float = DEFAULT_MIN_GAP_SECONDS,
) -> list[BackchannelMoment]:
    """Pick backchannel moments from time-sorted points; see the module docstring for the rule.

    ``times`` (N,) must be sorted ascending; ``probabilities`` is (N, C) over ``classes``. The result is
    sorted by time.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    if min_gap_seconds < 0:
        raise ValueError(f"min_gap_seconds must be >= 0, got {min_gap_seconds}")
    if len(times) != len(probabilities):
        raise ValueError(f"{len(times)} times but {len(probabilities)} rows of probabilities")
    if np.any(np.diff(times) < 0):
        raise ValueError("times must be sorted ascending")

    scores = backchannel_scores(probabilities, classes)
    candidates = [index for index in local_maxima(scores) if scores[index] >= threshold]
    # Highest score first; ties go to the earlier point so the result does not depend on sort stability.
    candidates.sort(key=lambda index: (-scores[index], times[index]))

    backchannel_columns = [column for column, name in enumerate(classes) if name != NOBC]
    kept: list[BackchannelMoment] = []
    for index in candidates:
        if any(abs(times[index] - moment.time) < min_gap_seconds for moment in kept):
            continue
        column = max(backchannel_columns, key=lambda c: probabilities[index, c])
        kept.append(
            BackchannelMoment(
                time=float(times[index]),
                score=float(scores[index]),
                class_name=classes[column],
                class_probability=float(probabilities[index, column]),
                point_index=index,
            )
        )
    return sorted(kept, key=lambda moment: moment.time)
