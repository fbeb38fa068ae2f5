"""BACKCast reader: two-party Korean broadcast dialogues with word-level timestamps.

Layout: ``ROOT/<program>/<dialogue id>/word.tsv`` and ``backchannel.tsv`` (UTF-8, tab-separated,
with a header row). ``word.tsv`` has one row per word (eojeol) of both speakers, timed by forced
alignment: ``uid sid wid speaker start end text backchannels``. ``backchannel.tsv`` has one row per
backchannel: ``bid speaker start end category text respondee_uid respondee_sid respondee_wid``;
``speaker`` is the listener who produced it. Backchannel speech is not in ``word.tsv``, so the
listener's words never contain it.

Audio is distributed separately (AIHub). The reader looks for ``audio.<ext>`` or
``<dialogue id>.<ext>`` in the dialogue folder, then ``<dialogue id>.<ext>`` in ``audio_dir``.
"""

from __future__ import annotations

import math
import unicodedata
from operator import attrgetter
from pathlib import Path
from typing import ClassVar

from tqdm import tqdm

from camabc_core.errors import CorpusFormatError
from camabc_core.interfaces import DatasetReader
from camabc_core.labels import DEFAULT_FOUR_CLASS_MAP
from camabc_core.records import BackchannelEvent, Conversation, Word
from camabc_plugins.datasets.checks import finish_load, require_root
from camabc_plugins.datasets.lines import MalformedLines, paused_garbage_collection, read_text
from camabc_plugins.datasets.media_files import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, find_media_file

WORD_COLUMNS = ("uid", "sid", "wid", "speaker", "start", "end", "text", "backchannels")

BACKCHANNEL_COLUMNS = ("bid", "speaker", "start", "end", "category", "text",
                       "respondee_uid", "respondee_sid", "respondee_wid")


def _read_data_lines(path: Path, columns: tuple[str, ...], malformed: MalformedLines) -> list[str]:
    """Return the lines after the header of one TSV file, NFKC-normalised as a whole.

    Data line ``i`` (0-based) is line ``i + 2`` of the file. Normalising the whole text at once is
    the same as normalising every field, because tab and newline never combine with neighbours.
    """
    text = read_text(path, malformed)
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    lines = text.split("\n")
    if tuple(field.strip() for field in lines[0].split("\t")) != columns:
        if not text:
            found = "an empty file"
        elif not lines[0].strip():
            # read_text blanks a line that is not valid UTF-8 after reporting it.
            found = "an empty line or one that is not valid UTF-8"
        else:
            found = repr(lines[0])
        raise CorpusFormatError(f"{path}:1: expected the header {' '.join(columns)!r}, found {found}")
    return lines[1:]


def _row_problem(fields: list[str], columns: tuple[str, ...], start_index: int) -> str:
    """Describe why a row failed to parse (the slow path, run only for bad rows)."""
    if len(fields) != len(columns):
        return f"expected {len(columns)} tab-separated fields ({' '.join(columns)}), found {len(fields)}"
    start_text, end_text = fields[start_index], fields[start_index + 1]
    return f"start/end must be seconds, found {start_text!r}, {end_text!r}"


class BackcastReader(DatasetReader):
    """Reads every BACKCast dialogue folder under ``ROOT``.

    :param skip_malformed: count and skip malformed rows instead of raising.
    :param audio_dir: extra directory searched for ``<dialogue id>.wav`` (or another audio format).
    """

    default_category_map: ClassVar[dict[str, str]] = dict(DEFAULT_FOUR_CLASS_MAP)
    default_label_scheme: ClassVar[str] = "four_class"

    def __init__(self, *, skip_malformed: bool = False, audio_dir: str | Path | None = None) -> None:
        self.skip_malformed = skip_malformed
        self.audio_dir = Path(audio_dir) if audio_dir is not None else None
        #: Malformed rows skipped by the last ``load``.
        self.skipped_lines = 0
        #: ``file:line`` of every row whose end preceded its start in the last ``load``.
        self.reversed_spans: list[str] = []

    def dialogue_dirs(self, root: Path) -> list[Path]:
        """Return every folder under ``root`` that contains a ``word.tsv``, sorted by path.

        ROOT may also be one program folder, one dialogue folder, or a dialogue's ``word.tsv`` or
        ``backchannel.tsv``.
        """
        root = require_root(root, "ROOT/<program>/<dialogue>/word.tsv")
        if root.is_file():
            if root.name not in ("word.tsv", "backchannel.tsv"):
                raise CorpusFormatError(f"{root}: not a BACKCast file; pass a dialogue's word.tsv or a "
                                        f"folder that contains <program>/<dialogue>/word.tsv")
            return [root.parent]
        folders = sorted(path.parent for path in Path(root).glob("*/*/word.tsv"))
        if not folders:
            # A root that points at one program, or at a single dialogue.
            folders = sorted(path.parent for path in Path(root).glob("*/word.tsv"))
            folders = folders or ([Path(root)] if (Path(root) / "word.tsv").is_file() else [])
        if not folders:
            raise CorpusFormatError(
                f"no BACKCast dialogues under {root}; expected ROOT/<program>/<dialogue>/word.tsv"
            )
        return folders

    def load(self, root: Path) -> list[Conversation]:
        malformed = MalformedLines("backcast", self.skip_malformed)
        folders = self.dialogue_dirs(root)
        progress = tqdm(folders, desc="backcast", unit="dialogue", disable=len(folders) < 100)
        with paused_garbage_collection():
            conversations = [self.read_dialogue(folder, malformed) for folder in progress]
        finish_load("backcast", Path(root), conversations, malformed)
        self.skipped_lines = malformed.count
        self.reversed_spans = malformed.reversed_spans
        return conversations

    def read_dialogue(self, folder: Path, malformed: MalformedLines) -> Conversation:
        """Parse one dialogue folder into a Conversation."""
        words = self._read_words(folder / "word.tsv", malformed)
        events = self._read_backchannels(folder / "backchannel.tsv", malformed)
        # map() with attrgetter runs in C, which matters over 3.4 million words.
        speakers = dict.fromkeys(map(attrgetter("speaker"), words))
        speakers.update(dict.fromkeys(map(attrgetter("listener"), events)))
        ends = [max(map(attrgetter("end"), items)) for items in (words, events) if items]
        duration = max(ends) if ends else None
        return Conversation(
            id=folder.name,
            words=tuple(words),
            backchannels=tuple(events),
            speakers=tuple(speakers),
            audio_path=self._find_audio(folder),
            video_path=find_media_file([folder], ["video", folder.name], VIDEO_EXTENSIONS),
            duration=duration,
            source=folder.parent.name,
        )

    def _read_words(self, path: Path, malformed: MalformedLines) -> list[Word]:
        # The hot loop of loading the corpus (3.4 million rows): one split and two float() per row,
        # and the slow checks only for rows that fail them.
        words: list[Word] = []
        append = words.append
        previous_start = 0.0
        in_order = True
        for index, line in enumerate(_read_data_lines(path, WORD_COLUMNS, malformed)):
            if not line:
                continue
            fields = line.split("\t")
            try:
                _, _, _, speaker, start_text, end_text, text, _ = fields
                start, end = float(start_text), float(end_text)
            except ValueError:
                malformed.report(path, index + 2, _row_problem(fields, WORD_COLUMNS, 4))
                continue
            # The fast test passes ordinary rows; NaN fails every comparison, so it takes the slow path.
            if not 0.0 <= start <= end < math.inf:
                span = malformed.check_span(path, index + 2, start, end)
                if span is None:
                    continue
                start, end = span
            in_order = in_order and start >= previous_start
            previous_start = start
            append(Word(speaker.strip(), start, end, text.strip()))
        if not in_order:
            words.sort(key=attrgetter("start", "end"))
        return words

    def _read_backchannels(self, path: Path, malformed: MalformedLines) -> list[BackchannelEvent]:
        if not path.is_file():
            raise CorpusFormatError(f"{path} is missing; every BACKCast dialogue folder has one "
                                    f"(with only its header row when it has no backchannels)")
        events = []
        for index, line in enumerate(_read_data_lines(path, BACKCHANNEL_COLUMNS, malformed)):
            if not line:
                continue
            fields = line.split("\t")
            try:
                _, listener, start_text, end_text, category, text, _, _, _ = fields
                start, end = float(start_text), float(end_text)
            except ValueError:
                malformed.report(path, index + 2, _row_problem(fields, BACKCHANNEL_COLUMNS, 2))
                continue
            span = malformed.check_span(path, index + 2, start, end)
            if span is None:
                continue
            if not category.strip():
                malformed.report(path, index + 2, "empty category")
                continue
            events.append(BackchannelEvent(
                listener=listener.strip(), start=span[0], end=span[1], category=category.strip(),
                text=" ".join(text.split()),
            ))
        events.sort(key=attrgetter("start", "end"))
        return events

    def _find_audio(self, folder: Path) -> Path | None:
        found = find_media_file([folder], ["audio", folder.name], AUDIO_EXTENSIONS)
        if found is None and self.audio_dir is not None:
            found = find_media_file([self.audio_dir], [folder.name], AUDIO_EXTENSIONS)
        return found
