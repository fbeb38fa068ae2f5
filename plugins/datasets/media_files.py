"""Lookup of a conversation's media files next to its annotation."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".sph")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mkv", ".webm", ".mov", ".avi")


def find_media_file(directories: Iterable[Path], stems: Iterable[str],
                    extensions: Iterable[str]) -> Path | None:
    """Return the first existing ``directory / (stem + extension)``, trying directories in order.

    Each directory is listed once, which is cheaper than testing every candidate name when a corpus
    has thousands of dialogue folders.
    """
    stems = list(stems)
    extensions = list(extensions)
    for directory in directories:
        try:
            names = set(os.listdir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for stem in stems:
            for extension in extensions:
                name = f"{stem}{extension}"
                if name in names and (directory / name).is_file():
                    return directory / name
    return None
