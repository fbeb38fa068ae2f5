"""Speaker and listener of a prediction run.

The model predicts whether and how the listener reacts to the speaker's input. The roles come from
the command line or, when left out, from the transcript:

- ``--listener L`` alone: the speaker is the person other than L with the most words.
- ``--speaker S`` alone: the listener is the person other than S with the most words.
- neither: the speaker is the person with the most words, the listener the one with the next most.

Ties go to the person whose first word comes first. A transcript with a single person has no
listener words; the listener is then the empty string and no audio is zeroed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from camabc_core.errors import CamabcError
from camabc_core.records import Word


def people_by_word_count(words: Sequence[Word]) -> list[str]:
    """Return everyone in ``words``, most words first; ties by the time of their first word."""
    counts = Counter(word.speaker for word in words)
    first_time: dict[str, float] = {}
    for word in words:
        first_time[word.speaker] = min(first_time.get(word.speaker, word.start), word.start)
    return sorted(counts, key=lambda person: (-counts[person], first_time[person]))


def resolve_roles(words: Sequence[Word], *, speaker: str | None = None,
                  listener: str | None = None, transcript: str = "the transcript") -> tuple[str, str]:
    """Return (speaker, listener) following the rule in the module docstring."""
    people = people_by_word_count(words)
    if not people:
        raise CamabcError(f"{transcript} has no words; nothing to predict from")
    for role, name in (("--speaker", speaker), ("--listener", listener)):
        if name is not None and name not in people:
            raise CamabcError(
                f"{role} {name!r} does not appear in {transcript}; its speakers are {people}"
            )
    if speaker is not None and speaker == listener:
        raise CamabcError(f"--speaker and --listener are both {speaker!r}; they must be different people")

    if speaker is None:
        candidates = [person for person in people if person != listener]
        if not candidates:
            raise CamabcError(
                f"{transcript} has words of {listener!r} only, so there is no speaker to react to"
            )
        speaker = candidates[0]
    if listener is None:
        others = [person for person in people if person != speaker]
        listener = others[0] if others else ""
    return speaker, listener
