"""Backchannel moments: the points of a timeline where a listener should react, and how.

The rule, applied to the time-sorted prediction points of one timeline:

1. The backchannel score of a point is ``1 - P(NoBC)``, the probability that the listener reacts.
   Every comparison below uses the score rounded to ``SCORE_DECIMALS`` decimals, so differences of
   float noise (about 1e-7, which change with the number of CPU threads) cannot move a moment.
2. Points marked in ``excluded`` (by default: points where the listener is talking) are left out.
3. A point is a candidate when its score is at least ``threshold`` and it starts a local maximum: a
   run of equal scores (a plateau, possibly one point long) whose neighbouring points on both sides
   score lower. The earliest point of the plateau is the candidate, because a backchannel is due as
   soon as the score is up.
4. Candidates are kept from the highest score down. A candidate closer than ``min_gap_seconds`` to an
   already kept moment is dropped, so one burst of high scores gives one moment.
5. The class of a moment is the most probable non-NoBC class at that point ("BC" in the binary
   scheme; Continuer, Understanding or Empathy in the four-class one).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import numpy as np

from camabc_core.labels import NOBC

DEFAULT_THRESHOLD = 0.5
DEFAULT_MIN_GAP_SECONDS = 1.0
#: Scores are compared after rounding to this many decimals (a tolerance of 1e-4).
SCORE_DECIMALS = 4


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


def rounded_scores(scores: np.ndarray) -> np.ndarray:
    """Scores (N,) rounded to ``SCORE_DECIMALS`` decimals: the values every moment comparison uses."""
    return np.round(np.asarray(scores, dtype=np.float64), SCORE_DECIMALS)


def local_maxima(scores: np.ndarray) -> list[int]:
    """Return the first index of every plateau of equal ``scores`` whose neighbours on both sides are lower.

    A plateau at either end of the sequence compares to its one neighbour. Callers round the scores
    first (``rounded_scores``) so that float noise does not split or create plateaus.
    """
    maxima = []
    start = 0
    while start < len(scores):
        stop = start + 1  # the plateau is scores[start:stop]
        while stop < len(scores) and scores[stop] == scores[start]:
            stop += 1
        rises = start == 0 or scores[start] > scores[start - 1]
        falls = stop == len(scores) or scores[start] > scores[stop]
        if rises and falls:
            maxima.append(start)
        start = stop
    return maxima


def detect_moments(
    times: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_gap_seconds: float = DEFAULT_MIN_GAP_SECONDS,
    excluded: np.ndarray | None = None,
) -> list[BackchannelMoment]:
    """Pick backchannel moments from time-sorted points; see the module docstring for the rule.

    ``times`` (N,) must be sorted ascending; ``probabilities`` is (N, C) over ``classes``. ``excluded``
    (N,) bool marks points that cannot be moments (for example, while the listener is talking); they
    are dropped before the local maxima are sought. The result is sorted by time.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    if min_gap_seconds < 0:
        raise ValueError(f"min_gap_seconds must be >= 0, got {min_gap_seconds}")
    if len(times) != len(probabilities):
        raise ValueError(f"{len(times)} times but {len(probabilities)} rows of probabilities")
    if np.any(np.diff(times) < 0):
        raise ValueError("times must be sorted ascending")

    if excluded is not None and len(excluded) != len(times):
        raise ValueError(f"{len(times)} times but {len(excluded)} excluded flags")

    scores = backchannel_scores(probabilities, classes)
    rounded = rounded_scores(scores)
    kept_points = np.flatnonzero(~np.asarray(excluded, dtype=bool)) if excluded is not None \
        else np.arange(len(times))
    candidates = [int(kept_points[position]) for position in local_maxima(rounded[kept_points])
                  if rounded[kept_points[position]] >= threshold]
    # Highest score first; ties go to the earlier point so the result does not depend on sort stability.
    candidates.sort(key=lambda index: (-rounded[index], times[index]))

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
