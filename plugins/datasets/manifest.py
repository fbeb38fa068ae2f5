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
manifest file (or absolute). ``channel_speakers`` names the speaker of each audio channel when the
audio has one channel per speaker. ``speakers`` defaults to the order of first appearance. Word and
backchannel ``text`` may be omitted or null (read as empty). Unknown keys are errors, so a typo
cannot silently drop data. Text is NFKC-normalised; words and backchannels are sorted by start.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, ClassVar

from camabc_plugins.datasets.lines import MalformedLines
from camabc_plugins.datasets.text import normalise_text

from camabc_core.errors import CorpusFormatError
from camabc_core.interfaces import DatasetReader
from camabc_core.labels import DEFAULT_FOUR_CLASS_MAP
from camabc_core.records import BackchannelEvent, Conversation, Word

logger = logging.getLogger(__name__)

CONVERSATION_KEYS = {"id", "audio", "video", "channel_speakers", "speakers", "duration", "words",
                     "backchannels"}
REQUIRED_KEYS = ("id", "words", "backchannels")
WORD_KEYS = {"speaker", "start", "end", "text"}
BACKCHANNEL_KEYS = {"listener", "start", "end", "category", "text"}


class ManifestEntryError(ValueError):
    """One invalid value in a manifest line; ``where`` is its JSON path (``words[3].start``)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")


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


def _span(entry: dict, where: str) -> tuple[float, float]:
    start = _seconds(entry["start"], f"{where}.start")
    end = _seconds(entry["end"], f"{where}.end")
    if end < start:
        raise ManifestEntryError(where, f"end {end} s is before start {start} s")
    return start, end


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise ManifestEntryError(where, f"expected a list, found {type(value).__name__}")
    return value


def parse_conversation(entry: Any, base_dir: Path) -> Conversation:
    """Validate one decoded manifest line and build its Conversation.

    :raises ManifestEntryError: naming the JSON path of the first invalid value.
    """
    entry = _check_keys(entry, CONVERSATION_KEYS, REQUIRED_KEYS, "conversation")
    conversation_id = _string(entry["id"], "id")

    words = []
    for index, item in enumerate(_list(entry["words"], "words")):
        where = f"words[{index}]"
        item = _check_keys(item, WORD_KEYS, ("speaker", "start", "end"), where)
        start, end = _span(item, where)
        words.append(Word(_string(item["speaker"], f"{where}.speaker"), start, end,
                          _string(item.get("text"), f"{where}.text", allow_empty=True)))
    events = []
    for index, item in enumerate(_list(entry["backchannels"], "backchannels")):
        where = f"backchannels[{index}]"
        item = _check_keys(item, BACKCHANNEL_KEYS, ("listener", "start", "end", "category"), where)
        start, end = _span(item, where)
        events.append(BackchannelEvent(
            listener=_string(item["listener"], f"{where}.listener"), start=start, end=end,
            category=_string(item["category"], f"{where}.category"),
            text=_string(item.get("text"), f"{where}.text", allow_empty=True),
        ))
    words.sort(key=lambda word: (word.start, word.end))
    events.sort(key=lambda event: (event.start, event.end))

    seen = dict.fromkeys([*(word.speaker for word in words), *(event.listener for event in events)])
    speakers = tuple(_string(name, "speakers[]") for name in _list(entry.get("speakers") or [], "speakers"))
    unlisted = [name for name in seen if name not in speakers]
    if speakers and unlisted:
        raise ManifestEntryError("speakers", f"{unlisted} speak but are not listed in {list(speakers)}")
    channel_speakers = entry.get("channel_speakers")
    if channel_speakers is not None:
        channel_speakers = tuple(_string(name, "channel_speakers[]")
                                 for name in _list(channel_speakers, "channel_speakers"))
    duration = entry.get("duration")
    return Conversation(
        id=conversation_id,
        words=tuple(words),
        backchannels=tuple(events),
        speakers=speakers or tuple(seen),
        audio_path=_media_path(entry.get("audio"), base_dir, "audio"),
        video_path=_media_path(entry.get("video"), base_dir, "video"),
        channel_speakers=channel_speakers,
        duration=None if duration is None else _seconds(duration, "duration"),
        source="manifest",
    )


def _media_path(value: Any, base_dir: Path, where: str) -> Path | None:
    if value is None:
        return None
    path = Path(_string(value, where))
    return path if path.is_absolute() else base_dir / path


class ManifestReader(DatasetReader):
    """Reads conversations from JSON Lines manifests (format above and in docs/datasets.md).

    :param skip_malformed: count and skip invalid lines instead of raising.
    """

    default_category_map: ClassVar[dict[str, str]] = dict(DEFAULT_FOUR_CLASS_MAP)
    default_label_scheme: ClassVar[str] = "four_class"

    def __init__(self, *, skip_malformed: bool = False) -> None:
        self.skip_malformed = skip_malformed
        #: Invalid lines skipped by the last ``load``.
        self.skipped_lines = 0

    @staticmethod
    def manifest_files(root: Path) -> list[Path]:
        """Return ``root`` itself if it is a file, else the ``*.jsonl`` files in it."""
        root = Path(root)
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
            with path.open(encoding="utf-8-sig") as handle:
                for line_number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        conversation = parse_conversation(json.loads(line), path.parent)
                    except json.JSONDecodeError as error:
                        malformed.report(path, line_number,
                                         f"invalid JSON: {error.msg} at column {error.colno}")
                        continue
                    except ManifestEntryError as error:
                        malformed.report(path, line_number, str(error))
                        continue
                    if conversation.id in first_line:
                        malformed.report(path, line_number, f"duplicate id {conversation.id!r}, first "
                                         f"used at {first_line[conversation.id]}")
                        continue
                    first_line[conversation.id] = f"{path}:{line_number}"
                    conversations.append(conversation)
        malformed.warn_summary()
        self.skipped_lines = malformed.count
        missing = [str(path) for conversation in conversations
                   for path in (conversation.audio_path, conversation.video_path)
                   if path is not None and not path.exists()]
        if missing:
            logger.warning("manifest: %d media file(s) not found, e.g. %s", len(missing), missing[0])
        return conversations
