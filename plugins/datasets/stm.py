"""STM transcripts and RTTM speaker turns: parsers and the ``stm`` dataset reader.

Formats (NIST, whitespace-separated, one segment per line):

- STM: ``file channel speaker start end [<label>] transcript``; lines starting with ``;;`` are
  comments. Segments of speaker ``inter_segment_gap`` and transcripts
  ``ignore_time_segment_in_scoring`` are skipped.
- RTTM: ``SPEAKER file channel onset duration <NA> <NA> speaker <NA> <NA>``; rows of other types
  are ignored.

The reader builds one Conversation per file id found in ``ROOT/*.stm`` and ``ROOT/*.rttm``. ROOT
may also be one ``.stm`` or ``.rttm`` file, and then a file with the same stem and the other
extension is read with it. Words come from the STM utterances, timed by character share of the utterance span.
Backchannels come from the rule in :mod:`camabc_plugins.datasets.turns`, applied to the RTTM turns
when there are any (diarization often has short listener turns that the transcript omits) and to
the STM utterances otherwise. Words of an utterance that is labelled a backchannel become the
event's text and are removed from the conversation's words.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import ClassVar

import attrs

from camabc_core.errors import CorpusFormatError
from camabc_core.interfaces import DatasetReader
from camabc_core.records import BackchannelEvent, Conversation, Word
from camabc_plugins.datasets.checks import finish_load, require_root
from camabc_plugins.datasets.lines import MalformedLines, read_text
from camabc_plugins.datasets.media_files import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, find_media_file
from camabc_plugins.datasets.text import interpolate_words, normalise_text
from camabc_plugins.datasets.turns import ShortTurnRule, Turn

__all__ = ["StmReader", "Turn", "Utterance", "read_rttm", "read_stm"]

BACKCHANNEL_CATEGORY = "BC"


@attrs.frozen
class Utterance:
    """One timed STM segment; ``text`` is NFKC-normalised and may be empty."""

    speaker: str
    start: float
    end: float
    text: str
    file_id: str = ""
    channel: str = ""


def _parse_seconds(path: Path, line_number: int, start_text: str, end_text: str,
                   malformed: MalformedLines) -> tuple[float, float] | None:
    try:
        start, end = float(start_text), float(end_text)
    except ValueError:
        malformed.report(path, line_number, f"times must be seconds, found {start_text!r}, {end_text!r}")
        return None
    return malformed.check_span(path, line_number, start, end)


def parse_stm(path: Path, malformed: MalformedLines) -> list[Utterance]:
    """Parse an STM file, reporting bad lines to ``malformed``."""
    utterances = []
    for line_number, line in enumerate(read_text(Path(path), malformed).split("\n"), start=1):
        if not line.strip() or line.startswith(";;"):
            continue
        fields = line.split(maxsplit=5)
        if len(fields) < 5:
            malformed.report(path, line_number, f"expected 'file channel speaker start end "
                             f"[<label>] transcript', found {len(fields)} fields")
            continue
        file_id, channel, speaker, start_text, end_text = fields[:5]
        span = _parse_seconds(path, line_number, start_text, end_text, malformed)
        if span is None:
            continue
        text = fields[5] if len(fields) == 6 else ""
        if text.startswith("<"):
            closing = text.find(">")
            if closing < 0:
                malformed.report(path, line_number, f"unclosed <label> in {text.strip()!r}")
                continue
            text = text[closing + 1:]
        text = normalise_text(text)
        if speaker == "inter_segment_gap" or text == "ignore_time_segment_in_scoring":
            continue
        utterances.append(Utterance(speaker, span[0], span[1], text, file_id, channel))
    return utterances


def parse_rttm(path: Path, malformed: MalformedLines) -> list[Turn]:
    """Parse the ``SPEAKER`` rows of an RTTM file, reporting bad lines to ``malformed``.

    A negative duration means that the turn ends before it starts, so the turn is kept with zero
    length at ``onset + duration``, like every reversed span.
    """
    turns = []
    for line_number, line in enumerate(read_text(Path(path), malformed).split("\n"), start=1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            malformed.report(path, line_number, f"expected at least 8 fields in a SPEAKER row "
                             f"(type file channel onset duration ortho stype name), found {len(fields)}")
            continue
        try:
            onset, duration = float(fields[3]), float(fields[4])
        except ValueError:
            malformed.report(path, line_number, f"onset/duration must be seconds, found "
                             f"{fields[3]!r}, {fields[4]!r}")
            continue
        span = malformed.check_span(Path(path), line_number, onset, onset + duration)
        if span is not None:
            turns.append(Turn(speaker=fields[7], start=span[0], end=span[1], file_id=fields[1]))
    return turns


def read_stm(path: str | Path, *, skip_malformed: bool = False) -> list[Utterance]:
    """Read an STM file into utterances in file order.

    :raises CorpusFormatError: on a malformed line (naming file and line) unless ``skip_malformed``.
    """
    malformed = MalformedLines("stm", skip_malformed)
    utterances = parse_stm(Path(path), malformed)
    malformed.warn_summary()
    return utterances


def read_rttm(path: str | Path, *, skip_malformed: bool = False) -> list[Turn]:
    """Read the speaker turns of an RTTM file in file order.

    :raises CorpusFormatError: on a malformed ``SPEAKER`` row (naming file and line) unless
        ``skip_malformed``.
    """
    malformed = MalformedLines("rttm", skip_malformed)
    turns = parse_rttm(Path(path), malformed)
    malformed.warn_summary()
    return turns


def map_turn_speakers(turns: list[Turn], utterances: list[Utterance]) -> dict[str, str]:
    """Map each RTTM speaker label to the STM speaker it overlaps most in time (one to one).

    Diarization labels (``speaker90``) and transcript names (``Diane``) differ; a label that
    overlaps no STM speaker keeps its own name.
    """
    overlap: dict[tuple[str, str], float] = defaultdict(float)
    for turn in turns:
        for utterance in utterances:
            shared = min(turn.end, utterance.end) - max(turn.start, utterance.start)
            if shared > 0:
                overlap[(turn.speaker, utterance.speaker)] += shared
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for (label, name), _ in sorted(overlap.items(), key=lambda item: -item[1]):
        if label not in mapping and name not in taken:
            mapping[label] = name
            taken.add(name)
    for turn in turns:
        mapping.setdefault(turn.speaker, turn.speaker)
    return mapping


def _words_inside(speaker_words: list[Word], turn: Turn) -> list[Word]:
    """Return the words (all of ``turn.speaker``) whose midpoint lies inside the turn."""
    return [word for word in speaker_words if turn.start <= (word.start + word.end) / 2 <= turn.end]


class StmReader(DatasetReader):
    """Reads STM transcripts and RTTM speaker turns into conversations with binary labels.

    :param skip_malformed: count and skip malformed lines instead of raising.
    :param max_seconds: longest listener turn labelled a backchannel, in seconds.
    :param max_words: most words in a listener turn labelled a backchannel.
    :param partner_pause_seconds: pauses up to this length inside a partner's turn are bridged.
    :param end_tolerance_seconds: how far a backchannel may run past the partner's turn end.
    """

    default_category_map: ClassVar[dict[str, str]] = {BACKCHANNEL_CATEGORY: "BC"}
    default_label_scheme: ClassVar[str] = "binary"

    def __init__(self, *, skip_malformed: bool = False, max_seconds: float = 1.0, max_words: int = 3,
                 partner_pause_seconds: float = 0.5, end_tolerance_seconds: float = 0.0) -> None:
        self.skip_malformed = skip_malformed
        self.rule = ShortTurnRule(max_seconds=max_seconds, max_words=max_words,
                                  partner_pause_seconds=partner_pause_seconds,
                                  end_tolerance_seconds=end_tolerance_seconds)
        #: Malformed lines skipped by the last ``load``.
        self.skipped_lines = 0
        #: ``file:line`` of every segment or turn that ends before it starts (kept as zero-length).
        self.reversed_spans: list[str] = []

    @staticmethod
    def annotation_files(root: Path) -> list[Path]:
        """Return the STM and RTTM files that ``root`` names (a folder or one file)."""
        root = require_root(root, "a folder of .stm/.rttm files, or one such file")
        if root.is_file():
            if root.suffix not in (".stm", ".rttm"):
                raise CorpusFormatError(f"{root}: not an .stm or .rttm file; pass one, or their folder")
            siblings = [root.with_suffix(".stm"), root.with_suffix(".rttm")]
            return [path for path in siblings if path.is_file()]
        files = sorted([*root.glob("*.stm"), *root.glob("*.rttm")])
        if not files:
            raise CorpusFormatError(f"no .stm or .rttm files in {root}")
        return files

    def load(self, root: Path) -> list[Conversation]:
        malformed = MalformedLines("stm", self.skip_malformed)
        utterances: dict[str, list[Utterance]] = defaultdict(list)
        turns: dict[str, list[Turn]] = defaultdict(list)
        media_dirs: dict[str, list[Path]] = defaultdict(list)
        for path in self.annotation_files(root):
            if path.suffix == ".stm":
                parsed: list[Utterance] | list[Turn] = parse_stm(path, malformed)
                target: dict = utterances
            else:
                parsed = parse_rttm(path, malformed)
                target = turns
            for item in parsed:
                target[item.file_id].append(item)
                if path.parent not in media_dirs[item.file_id]:
                    media_dirs[item.file_id].append(path.parent)
        file_ids = sorted(set(utterances) | set(turns))
        conversations = [
            self.build_conversation(file_id, utterances[file_id], turns[file_id], media_dirs[file_id])
            for file_id in file_ids
        ]
        finish_load("stm", Path(root), conversations, malformed)
        self.skipped_lines = malformed.count
        self.reversed_spans = malformed.reversed_spans
        return conversations

    def build_conversation(self, file_id: str, utterances: list[Utterance], turns: list[Turn],
                           media_dirs: list[Path]) -> Conversation:
        """Time the words of one file and label its backchannels."""
        words = [
            word
            for utterance in utterances
            for word in interpolate_words(utterance.speaker, utterance.start, utterance.end,
                                          utterance.text.split())
        ]
        if turns:
            names = map_turn_speakers(turns, utterances)
            candidates = [attrs.evolve(turn, speaker=names[turn.speaker]) for turn in turns]
        else:
            candidates = [Turn(item.speaker, item.start, item.end, file_id) for item in utterances]

        words_by_speaker: dict[str, list[Word]] = defaultdict(list)
        for word in words:
            words_by_speaker[word.speaker].append(word)
        partner_turns = self.rule.index(candidates)
        events: list[BackchannelEvent] = []
        backchannel_words: set[int] = set()
        for candidate in candidates:
            inside = _words_inside(words_by_speaker[candidate.speaker], candidate)
            if self.rule.is_backchannel(candidate, len(inside), partner_turns):
                events.append(BackchannelEvent(
                    listener=candidate.speaker, start=candidate.start, end=candidate.end,
                    category=BACKCHANNEL_CATEGORY, text=" ".join(word.text for word in inside),
                ))
                backchannel_words.update(id(word) for word in inside)

        kept = sorted((word for word in words if id(word) not in backchannel_words),
                      key=lambda word: (word.start, word.end))
        events.sort(key=lambda event: (event.start, event.end))
        speakers = dict.fromkeys([*(item.speaker for item in utterances), *(c.speaker for c in candidates)])
        ends = [item.end for item in (*utterances, *candidates)]
        source = "+".join(name for name, items in (("stm", utterances), ("rttm", turns)) if items)
        return Conversation(
            id=file_id,
            words=tuple(kept),
            backchannels=tuple(events),
            speakers=tuple(speakers),
            audio_path=find_media_file(media_dirs, [file_id], AUDIO_EXTENSIONS),
            video_path=find_media_file(media_dirs, [file_id], VIDEO_EXTENSIONS),
            duration=max(ends, default=None),
            source=source,
        )
