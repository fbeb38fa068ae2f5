"""Corpus data model shared by every dataset reader.

Times are seconds from the start of the conversation's media. Speakers are free-form ids as the
corpus writes them (``"A"``, ``"B"``, ``"SPEAKER_00"``).
"""

from __future__ import annotations

from pathlib import Path

import attrs


@attrs.frozen
class Word:
    """One timed word (or token) of a transcript."""

    speaker: str
    start: float
    end: float
    text: str


@attrs.frozen
class BackchannelEvent:
    """One listener backchannel: ``listener`` reacts to the other speaker at ``start`` seconds.

    ``category`` is the corpus's raw category (``"CONTINUER"``, ``"BC/공감"``...); the recipe's label
    scheme maps it to a class.
    """

    listener: str
    start: float
    end: float
    category: str
    text: str = ""


@attrs.frozen
class Conversation:
    """One dialogue: its media, its words (all speakers, time-sorted) and its backchannels.

    ``audio_path`` may hold one mono file or a multi-channel file whose channel i belongs to
    ``channel_speakers[i]`` (Switchboard). ``video_path`` is None for audio-only corpora.
    """

    id: str
    words: tuple[Word, ...]
    backchannels: tuple[BackchannelEvent, ...]
    speakers: tuple[str, ...]
    audio_path: Path | None = None
    video_path: Path | None = None
    channel_speakers: tuple[str, ...] | None = None
    duration: float | None = None
    source: str = ""


@attrs.frozen
class Sample:
    """One prediction point: the window ends at ``time`` (exclusive) and covers ``speaker``'s input.

    ``label`` is the class id in the recipe's label scheme, or None for unlabeled Context Alignment
    samples. ``raw_category`` keeps the corpus category for statistics.
    """

    conversation_id: str
    time: float
    speaker: str
    listener: str
    label: int | None = None
    raw_category: str | None = None
