"""Permissions of files written through a temporary file.

``tempfile.mkstemp`` creates files readable by their owner only (mode 0600), and ``os.replace`` keeps
that mode, so results written atomically would be hidden from the rest of a research group. Every
atomic writer therefore gives its temporary file the mode an ordinary ``open(path, "w")`` would
give: 0666 minus the process's umask (0644 with the usual umask 022).
"""

from __future__ import annotations

import os
import threading

_UMASK_LOCK = threading.Lock()


def umask_file_mode() -> int:
    """Return the mode a newly created ordinary file gets under the current umask."""
    # The umask can only be read by setting it; the lock keeps other threads of this module from
    # seeing the temporary value.
    with _UMASK_LOCK:
        umask = os.umask(0o077)
        os.umask(umask)
    return 0o666 & ~umask


def apply_umask_permissions(path: str | os.PathLike) -> None:
    """Give ``path`` (a temporary file about to be renamed into place) the usual umask-based mode."""
    os.chmod(path, umask_file_mode())
