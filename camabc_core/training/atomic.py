"""Atomic file writes: a reader sees either the old file or the complete new one, never a torn write.

Every writer goes to a temporary file in the destination's directory (so ``os.replace`` stays on one
file system and is atomic) and renames it over the destination only after the data are flushed. The
file gets the usual umask-based mode (0644 typically), not ``mkstemp``'s owner-only 0600.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from camabc_core.file_permissions import apply_umask_permissions


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on normal exit, fsync it and rename it over ``path``.

    The caller writes the whole file to the yielded path (any library's ``save(path)`` works). On an
    exception the temporary file is removed and ``path`` is left untouched.
    """
    destination = Path(path)
    destination.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary_name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent
    )
    os.close(handle)
    temporary = Path(temporary_name)
    try:
        yield temporary
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        apply_umask_permissions(temporary)
        os.replace(temporary, destination)
    finally:
        if temporary.exists():
            temporary.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | os.PathLike, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
