"""Close-match suggestions for error messages about misspelled names and keys."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# difflib's default cutoff: "temprature" -> "temperature" scores 0.95, unrelated words stay below 0.6.
MATCH_CUTOFF = 0.6


def closest_match(word: str, choices: Iterable[str]) -> str | None:
    """Return the choice most similar to ``word`` (ignoring case), or None when nothing is close."""
    by_lowercase = {choice.lower(): choice for choice in choices}
    matches = difflib.get_close_matches(word.lower(), list(by_lowercase), n=1, cutoff=MATCH_CUTOFF)
    return by_lowercase[matches[0]] if matches else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return " Did you mean 'x'?" for the closest choice, or an empty string."""
    match = closest_match(word, choices)
    return f" Did you mean {match!r}?" if match is not None else ""
