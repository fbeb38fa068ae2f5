"""Manifest reader: one's own corpus as JSON Lines, one conversation per line.

ROOT is a ``.jsonl`` file or a folder whose ``*.jsonl`` files are read in name order. Each line is
one JSON object (docs/datasets.md has a full example)::

    {"id": "session-001",
     "audio": "media/session-001.wav", "video": "media/session-001.mp4",
     "channel_speakers": null, "speakers": ["counsellor", "client"], "duration": 3012.5,
     "words": [{"speaker": "counsellor", "start": 0.52, "end": 0.81, "text": "안녕하세요"}],
     "backchannels": [{"listener": "client", "start": 3.2, "end": 3.5, "category": "CONTINUER",
                       "text": "네"}]}

Required keys: ``id``, ``words``, ``backchannels``. ``audio`` and ``video`` are paths relative to the
folder of the manifest file (or absolute), and must exist unless the reader option ``check_media``
is false. ``channel_speakers`` names the speaker of each audio channel when the audio has one
channel per speaker. ``speakers`` defaults to the order of first appearance. Every word speaker
must be in ``speakers`` when it is given. A listener who is not in it is added at the end, because
a listener without words is allowed (``load`` logs a warning). Word and backchannel ``text`` may be
omitted or null (read as empty). Unknown keys are errors, so a typo cannot silently drop data. Text
is NFKC-normalised; words and backchannels are sorted by start.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

from camabc_core.errors import CorpusFormatError
from camabc_core.interfaces import DatasetReader
from camabc_core.labels import DEFAULT_FOUR_CLASS_MAP
from camabc_core.records import BackchannelEvent, Conversation, Word
from camabc_plugins.datasets.checks import finish_load, require_root
from camabc_plugins.datasets.lines import MalformedLines, read_text
from camabc_plugins.datasets.text import normalise_text

CONVERSATION_KEYS = {"id", "audio", "video", "channel_speakers", "speakers", "duration", "words",
                     "backchannels"}
REQUIRED_KEYS = ("id", "words", "backchannels")
WORD_KEYS = {"speaker", "start", "end", "text"}
BACKCHANNEL_KEYS = {"listener", "start", "end", "category", "text"}


class ManifestEntryError(ValueError):
    """One invalid value in a manifest line; ``where`` is its JSON path (``words[3].start``).

    ``fix`` is the remedy that the reader's error message proposes first.
    """

    def __init__(self, where: str, problem: str, fix: str = "Fix the line") -> None:
        super().__init__(f"{where}: {problem}")
        self.fix = fix


def _check_keys(entry: Any, allowed: set[str], required: tuple[str, ...], where: str) -> dict:
    if not isinstance(entry, dict):
        raise ManifestEntryError(where, f"expected a JSON object, found {type(entry).__name__}")
    unknown = sorted(set(entry) - allowed)
    if unknown:
        raise ManifestEntryError(where, f"unknown key(s) {unknown}; allowed keys are {sorted(allowed)}")
    missing = [key for key in required if key not in entry]
    if missing:
        raise ManifestEntryError(where, f"missing key(s) {missing}")
    return entry


def _string(value: Any, where: str, *, allow_empty: bool = False) -> str:
    if value is None and allow_empty:
        return ""
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ManifestEntryError(where, f"expected a non-empty string, found {value!r}")
    return normalise_text(value)


def _seconds(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ManifestEntryError(where, f"expected a time in seconds >= 0, found {value!r}")
    return float(value)


def _span(entry: dict, where: str, reversed_spans: list[str]) -> tuple[float, float]:
    """Return the item's span; a span that ends before it starts becomes ``(end, end)``.

    The JSON path of such an item is appended to ``reversed_spans``.
    """
    start = _seconds(entry["start"], f"{where}.start")
    end = _seconds(entry["end"], f"{where}.end")
    if end < start:
        reversed_spans.append(where)
        return end, end
    return start, end


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise ManifestEntryError(where, f"expected a list, found {type(value).__name__}")
    return value


def parse_conversation(entry: Any, base_dir: Path, *, check_media: bool = False,
                       reversed_spans: list[str] | None = None) -> Conversation:
    """Validate one decoded manifest line and build its Conversation.

    :param base_dir: folder that relative media paths are resolved against (the manifest's folder).
    :param check_media: raise when the ``audio`` or ``video`` file does not exist.
    :param reversed_spans: receives the JSON path of every span that ends before it starts.
    :raises ManifestEntryError: naming the JSON path of the first invalid value.
    """
    reversed_spans = [] if reversed_spans is None else reversed_spans
    entry = _check_keys(entry, CONVERSATION_KEYS, REQUIRED_KEYS, "conversation")
    conversation_id = _string(entry["id"], "id")

    words = []
    for index, item in enumerate(_list(entry["words"], "words")):
        where = f"words[{index}]"
        item = _check_keys(item, WORD_KEYS, ("speaker", "start", "end"), where)
        start, end = _span(item, where, reversed_spans)
        words.append(Word(_string(item["speaker"], f"{where}.speaker"), start, end,
                          _string(item.get("text"), f"{where}.text", allow_empty=True)))
    events = []
    for index, item in enumerate(_list(entry["backchannels"], "backchannels")):
        where = f"backchannels[{index}]"
        item = _check_keys(item, BACKCHANNEL_KEYS, ("listener", "start", "end", "category"), where)
        start, end = _span(item, where, reversed_spans)
        events.append(BackchannelEvent(
            listener=_string(item["listener"], f"{where}.listener"), start=start, end=end,
            category=_string(item["category"], f"{where}.category"),
            text=_string(item.get("text"), f"{where}.text", allow_empty=True),
        ))
    words.sort(key=lambda word: (word.start, word.end))
    events.sort(key=lambda event: (event.start, event.end))

    word_speakers = dict.fromkeys(word.speaker for word in words)
    speakers = tuple(_string(name, "speakers[]") for name in _list(entry.get("speakers") or [], "speakers"))
    unlisted = [name for name in word_speakers if name not in speakers]
    if speakers and unlisted:
        raise ManifestEntryError("speakers", f"{unlisted} speak but are not listed in {list(speakers)}")
    # Listeners without words are allowed (the reader warns), so they join the speakers.
    speakers = tuple(dict.fromkeys([*(speakers or word_speakers), *(event.listener for event in events)]))
    channel_speakers = entry.get("channel_speakers")
    if channel_speakers is not None:
        channel_speakers = tuple(_string(name, "channel_speakers[]")
                                 for name in _list(channel_speakers, "channel_speakers"))
    duration = entry.get("duration")
    return Conversation(
        id=conversation_id,
        words=tuple(words),
        backchannels=tuple(events),
        speakers=speakers,
        audio_path=_media_path(entry.get("audio"), base_dir, "audio", check_media),
        video_path=_media_path(entry.get("video"), base_dir, "video", check_media),
        channel_speakers=channel_speakers,
        duration=None if duration is None else _seconds(duration, "duration"),
        source="manifest",
    )


def _media_path(value: Any, base_dir: Path, where: str, check_media: bool) -> Path | None:
    if value is None:
        return None
    written = _string(value, where)
    path = Path(written) if Path(written).is_absolute() else base_dir / written
    if check_media and not path.is_file():
        relative = "" if Path(written).is_absolute() else " (relative paths start at the manifest's folder)"
        raise ManifestEntryError(
            where, f"media file {path} not found{relative}",
            fix="Fix the path, set the reader option check_media: false (--reader-option "
                "check_media=false) to read the annotation without its media",
        )
    return path


class ManifestReader(DatasetReader):
    """Reads conversations from JSON Lines manifests (format above and in docs/datasets.md).

    :param skip_malformed: count and skip invalid lines instead of raising.
    :param check_media: require the ``audio`` and ``video`` files to exist when the manifest is read.
        Set it to false to inspect the annotation of a corpus whose media are elsewhere.
    """

    default_category_map: ClassVar[dict[str, str]] = dict(DEFAULT_FOUR_CLASS_MAP)
    default_label_scheme: ClassVar[str] = "four_class"

    def __init__(self, *, skip_malformed: bool = False, check_media: bool = True) -> None:
        self.skip_malformed = skip_malformed
        self.check_media = check_media
        #: Invalid lines skipped by the last ``load``.
        self.skipped_lines = 0
        #: ``file:line JSON-path`` of every word or backchannel that ends before it starts.
        self.reversed_spans: list[str] = []

    @staticmethod
    def manifest_files(root: Path) -> list[Path]:
        """Return ``root`` itself if it is a file, else the ``*.jsonl`` files in it."""
        root = require_root(root, "a .jsonl manifest or a folder of them")
        if root.is_file():
            return [root]
        files = sorted(root.glob("*.jsonl"))
        if not files:
            raise CorpusFormatError(f"no manifest (*.jsonl) in {root}; pass the manifest file or its folder")
        return files

    def load(self, root: Path) -> list[Conversation]:
        malformed = MalformedLines("manifest", self.skip_malformed)
        conversations: list[Conversation] = []
        first_line: dict[str, str] = {}
        for path in self.manifest_files(root):
            for line_number, line in enumerate(read_text(path, malformed).split("\n"), start=1):
                if not line.strip():
                    continue
                conversation = self._parse_line(path, line_number, line, malformed)
                if conversation is None:
                    continue
                if conversation.id in first_line:
                    malformed.report(path, line_number, f"duplicate id {conversation.id!r}, first "
                                     f"used at {first_line[conversation.id]}")
                    continue
                first_line[conversation.id] = f"{path}:{line_number}"
                conversations.append(conversation)
        finish_load("manifest", Path(root), conversations, malformed)
        self.skipped_lines = malformed.count
        self.reversed_spans = malformed.reversed_spans
        return conversations

    def _parse_line(self, path: Path, line_number: int, line: str, malformed: MalformedLines
                    ) -> Conversation | None:
        # The line has no line break, so a JSON error position is a column of this line.
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as error:
            malformed.report(path, line_number, f"invalid JSON: {error.msg}", column=error.colno)
            return None
        reversed_spans: list[str] = []
        try:
            conversation = parse_conversation(entry, path.parent, check_media=self.check_media,
                                              reversed_spans=reversed_spans)
        except ManifestEntryError as error:
            malformed.report(path, line_number, str(error), fix=error.fix)
            return None
        malformed.reversed_spans.extend(f"{path}:{line_number} {where}" for where in reversed_spans)
        return conversation
