"""Speaker turns and the rule that labels short listener turns as backchannels.

Corpora without backchannel annotation (Switchboard, STM/RTTM transcripts) get binary labels from
one rule: a listener turn is a backchannel when it lasts at most ``max_seconds``, has at most
``max_words`` words, and lies inside a turn of another speaker. "Inside" means it starts at or after
that turn's start and ends no later than that turn's end plus ``end_tolerance_seconds``. A
speaker's turns separated by pauses of at most ``partner_pause_seconds`` count as one turn, so a
backchannel given in the speaker's short pause still lies inside the speaker's turn.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable

import attrs


@attrs.frozen
class Turn:
    """One stretch of speech by one speaker, in seconds (an RTTM ``SPEAKER`` row)."""

    speaker: str
    start: float
    end: float
    file_id: str = ""

    @property
    def duration(self) -> float:
        return self.end - self.start


def merge_turns(turns: Iterable[Turn], max_pause: float) -> dict[str, list[Turn]]:
    """Group turns by speaker and join each speaker's turns separated by at most ``max_pause`` s.

    Returns, per speaker, turns sorted by start that do not overlap each other.
    """
    by_speaker: dict[str, list[Turn]] = defaultdict(list)
    for turn in sorted(turns, key=lambda item: (item.speaker, item.start, item.end)):
        merged = by_speaker[turn.speaker]
        if merged and turn.start - merged[-1].end <= max_pause:
            last = merged[-1]
            merged[-1] = attrs.evolve(last, end=max(last.end, turn.end))
        else:
            merged.append(turn)
    return dict(by_speaker)


class TurnIndex:
    """Each speaker's merged turns, searchable by time."""

    def __init__(self, turns: Iterable[Turn], max_pause: float) -> None:
        self.turns = merge_turns(turns, max_pause)
        self._starts = {speaker: [turn.start for turn in merged] for speaker, merged in self.turns.items()}

    def containing_turn(self, turn: Turn, end_tolerance: float = 0.0) -> Turn | None:
        """Return the turn of another speaker that ``turn`` lies inside, or None."""
        for speaker, merged in self.turns.items():
            if speaker == turn.speaker:
                continue
            index = bisect.bisect_right(self._starts[speaker], turn.start) - 1
            if index >= 0 and turn.end <= merged[index].end + end_tolerance:
                return merged[index]
        return None


@attrs.frozen
class ShortTurnRule:
    """Labels a listener turn as a backchannel when it is short and inside a partner's turn."""

    #: Maximum backchannel duration, in seconds.
    max_seconds: float = 1.0
    #: Maximum words in a backchannel; a turn with no transcribed words passes.
    max_words: int = 3
    #: A partner's turns separated by pauses up to this many seconds count as one turn.
    partner_pause_seconds: float = 0.5
    #: How far past the end of the partner's turn a backchannel may run, in seconds.
    end_tolerance_seconds: float = 0.0

    def index(self, turns: Iterable[Turn]) -> TurnIndex:
        """Merge and index every speaker's turns (once per conversation)."""
        return TurnIndex(turns, self.partner_pause_seconds)

    def is_backchannel(self, turn: Turn, num_words: int, partner_turns: TurnIndex) -> bool:
        """Apply the rule to one listener turn with ``num_words`` transcribed words."""
        if turn.duration > self.max_seconds or num_words > self.max_words:
            return False
        return partner_turns.containing_turn(turn, self.end_tolerance_seconds) is not None
