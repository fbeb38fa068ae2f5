"""The job manifest: one JSON object per line, the last line of a job id wins.

The main process rewrites the whole file (temporary file, then ``os.replace``) before and after a
run. While jobs run, every process appends one line per finished or failed job with a single
``write`` on a file opened with ``O_APPEND``. On Linux with a local file system each such write lands
at the end of the file in one piece, so the lines of concurrent processes do not mix.
NOTE: network file systems (NFS) may not keep appends whole; put the output folder on local disk.

A run killed in the middle of an append can leave a partial line, which a later append may extend.
``read_manifest`` skips undecodable lines with a warning, and the jobs they described run again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from synth.media import atomic_output

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"


def read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """Return the newest record of every job id in the manifest, in first-seen order."""
    records: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return records
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("%s: line %d is not valid JSON (an interrupted append?); ignored, so its job "
                           "runs again", path, number)
            continue
        if not isinstance(record, dict) or "id" not in record:
            logger.warning("%s: line %d has no job id; ignored", path, number)
            continue
        records[record["id"]] = record
    return records


def rewrite_manifest(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Replace the manifest with ``records`` atomically."""
    with atomic_output(path) as temporary, temporary.open("w", encoding="utf-8") as stream:
        for record in records:
            stream.write(json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n")
        stream.flush()
        os.fsync(stream.fileno())


def append_record(path: Path, record: Mapping[str, Any]) -> None:
    """Append one record as one line with a single ``write`` call."""
    data = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(descriptor, data)
        if written != len(data):
            raise OSError(f"{path}: short write ({written} of {len(data)} bytes) while appending a record")
    finally:
        os.close(descriptor)
