"""Lookup of the conversation videos that ``python -m synth ... --clips conversation`` writes.

synth writes one mp4 per recording to ``OUT/conversations/<conversation>.mp4``. Each frame
shows the current speaker, over the whole recording from 0 s. It records every job in
``OUT/manifest.jsonl`` (``kind`` ``"conversation"``, the reader's ``conversation`` id, the
``output`` path relative to OUT and a ``status``). The manifest is the source used when it exists,
because it stores the exact conversation id, so no file-name rule has to be inverted. It also
separates a finished video from a failed or pending job. A folder without a manifest (videos
copied elsewhere) falls back to the file-name rule.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import attrs

from camabc_core.errors import CorpusFormatError

logger = logging.getLogger(__name__)

CONVERSATION_KIND = "conversation"
CONVERSATION_FOLDER = "conversations"


@attrs.frozen
class VideoLookup:
    """A conversation's video file, or the reason it is missing."""

    #: The video file; None when it is missing.
    path: Path | None
    #: The file the reader expected (the manifest's output, or the file-name rule's path).
    expected: Path
    #: The reason the video is missing, e.g. the synth job's status and error; None when found.
    problem: str | None = None


def expected_video_path(video_dir: Path, conversation_id: str) -> Path:
    """Return ``video_dir/conversations/<conversation>.mp4``, the file synth writes for a conversation."""
    from synth.jobs import path_part

    return video_dir / CONVERSATION_FOLDER / f"{path_part(conversation_id)}.mp4"


class ConversationVideos:
    """Conversation videos under one synth output folder, read once per ``load``."""

    def __init__(self, video_dir: Path) -> None:
        if not video_dir.is_dir():
            raise CorpusFormatError(f"{video_dir}: video folder not found; set the video_dir option to the "
                                    f"--out folder of `python -m synth ... --clips conversation`")
        from synth.manifest import MANIFEST_NAME, read_manifest

        self.video_dir = video_dir
        self.manifest = video_dir / MANIFEST_NAME
        records = read_manifest(self.manifest) if self.manifest.is_file() else None
        #: Conversation id -> its manifest record; None when the folder has no manifest.
        self.records: dict[str, dict] | None = None
        #: Job kinds in the manifest, for the hint when it has clips but no conversation videos.
        self.kinds: Counter[str] = Counter()
        if records is not None:
            self.records = {}
            for record in records.values():
                self.kinds[str(record.get("kind"))] += 1
                if record.get("kind") == CONVERSATION_KIND and isinstance(record.get("conversation"), str):
                    self.records[record["conversation"]] = record
        else:
            logger.info("%s has no %s; using the file-name rule %s/<conversation>.mp4", video_dir,
                        MANIFEST_NAME, CONVERSATION_FOLDER)

    def find(self, conversation_id: str) -> VideoLookup:
        """Return the video of ``conversation_id``; a missing one comes with the expected path and why."""
        if self.records is None:
            expected = expected_video_path(self.video_dir, conversation_id)
            if expected.is_file():
                return VideoLookup(expected, expected)
            return VideoLookup(None, expected, f"file not found, and the folder has no {self.manifest.name}")
        record = self.records.get(conversation_id)
        if record is None:
            return VideoLookup(None, expected_video_path(self.video_dir, conversation_id),
                               f"no conversation job in {self.manifest}")
        expected = self.video_dir / str(record.get("output", ""))
        status = record.get("status")
        if status != "done":
            error = f": {record['error']}" if record.get("error") else ""
            return VideoLookup(None, expected, f"its synth job has status {status!r}{error}")
        if not expected.is_file():
            return VideoLookup(None, expected, f"{self.manifest} marks it done, but the file is missing")
        return VideoLookup(expected, expected)

    def kinds_hint(self) -> str:
        """Return a note when the manifest only has window or side clips, which the reader cannot use."""
        if self.records or not self.kinds:
            return ""
        listed = ", ".join(f"{count} {kind}" for kind, count in sorted(self.kinds.items()))
        return (f" The manifest lists {listed} job(s) but no conversation videos: window and side clips "
                f"are per speaker, and the reader needs one video per conversation.")
