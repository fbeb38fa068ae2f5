"""Lookup of a conversation's media files next to its annotation."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

AUDIO_EXTENSIONS: tuple[str, ...] = (".wav", ".flac", ".mp3", ".m4a", ".ogg", ".sph")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mkv", ".webm", ".mov", ".avi")


def find_media_file(directories: Iterable[Path], stems: Iterable[str],
                    extensions: Iterable[str]) -> Path | None:
    """Return the first existing ``directory / (stem + extension)``, trying directories in order."""
    stems = list(stems)
    extensions = list(extensions)
    for directory in directories:
        for stem in stems:
            for extension in extensions:
                candidate = directory / f"{stem}{extension}"
                if candidate.is_file():
                    return candidate
    return None
