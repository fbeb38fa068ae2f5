"""Line-level reading shared by the corpus readers: UTF-8 decoding, malformed lines and time spans.

Every reader treats the same faults the same way:

- A line that is not valid UTF-8, cannot be parsed, or has a negative or non-finite time is
  malformed. It raises :class:`CorpusFormatError` naming the file and line, or with
  ``skip_malformed`` it is counted and skipped.
- A span that ends before it starts is kept as a zero-length span at its end time, and ``load``
  logs one warning that lists such spans. The one such row in the BACKCast release is a forced
  alignment slip whose end agrees with the neighbouring words, so the end time is the one kept.
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import logging
import math
from collections.abc import Iterator
from pathlib import Path

from camabc_core.errors import CorpusFormatError

logger = logging.getLogger(__name__)

# Skipped lines logged one by one at debug level before the summary warning.
_DEBUG_EXAMPLES = 20
# Reversed spans named in the summary warning.
_WARNING_EXAMPLES = 5


class MalformedLines:
    """Collects malformed lines and reversed spans while a reader runs.

    With ``skip=False`` the first malformed line raises :class:`CorpusFormatError`. With ``skip=True``
    each one is counted. ``warn_summary`` logs one warning with the total and the first location,
    and one warning that lists the spans kept as zero-length.
    """

    def __init__(self, reader_name: str, skip: bool) -> None:
        self.reader_name = reader_name
        self.skip = skip
        self.count = 0
        self.first: str | None = None
        #: ``file:line`` (and the JSON path for manifests) of every span that ends before it starts.
        self.reversed_spans: list[str] = []

    def report(self, path: Path, line_number: int, reason: str, *, column: int | None = None,
               fix: str = "Fix the line") -> None:
        """Raise for the malformed line ``line_number`` (1-based) of ``path``, or count it.

        ``column`` (1-based) is added to the location as ``file:line:column``; ``fix`` is the
        first remedy the error message proposes.
        """
        location = f"{path}:{line_number}" if column is None else f"{path}:{line_number}:{column}"
        if not self.skip:
            raise CorpusFormatError(
                f"{location}: {reason}. {fix}, or set data.skip_malformed: true "
                f"(--skip-malformed) to skip such lines."
            )
        self.count += 1
        if self.first is None:
            self.first = f"{location}: {reason}"
        if self.count <= _DEBUG_EXAMPLES:
            logger.debug("%s: skipped malformed line %s: %s", self.reader_name, location, reason)

    def check_span(self, path: Path, line_number: int, start: float, end: float
                   ) -> tuple[float, float] | None:
        """Return the span to keep for one line, or None after reporting the line as malformed.

        Negative and non-finite times are malformed. A span that ends before it starts becomes
        ``(end, end)`` and is listed in ``reversed_spans``.
        """
        if not (math.isfinite(start) and math.isfinite(end)):
            self.report(path, line_number, f"times must be finite seconds, found start {start}, end {end}")
            return None
        if start < 0.0 or end < 0.0:
            self.report(path, line_number, f"negative time: start {start} s, end {end} s")
            return None
        if end < start:
            self.reversed_spans.append(f"{path}:{line_number}")
            return end, end
        return start, end

    def warn_summary(self) -> None:
        """Log the number of skipped lines and the spans kept as zero-length, if any."""
        if self.count:
            logger.warning(
                "%s: skipped %d malformed line(s); the first was %s",
                self.reader_name, self.count, self.first,
            )
        if self.reversed_spans:
            more = len(self.reversed_spans) - _WARNING_EXAMPLES
            logger.warning(
                "%s: %d span(s) end before they start; kept as zero-length at the end time: %s%s",
                self.reader_name, len(self.reversed_spans),
                ", ".join(self.reversed_spans[:_WARNING_EXAMPLES]),
                f" and {more} more" if more > 0 else "",
            )


def read_text(path: Path, malformed: MalformedLines) -> str:
    """Return the text of a UTF-8 file with every line break (CRLF, CR, LF) written as ``"\\n"``.

    A leading byte-order mark is dropped. A line that is not valid UTF-8 is reported to
    ``malformed`` and replaced by an empty line, so line ``i`` of the result is still line ``i`` of
    the file and readers skip it like a blank line.
    """
    data = path.read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # The slow path, line by line, runs only for files that fail to decode as a whole.
        text = _decode_lines(path, data, malformed)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _decode_lines(path: Path, data: bytes, malformed: MalformedLines) -> str:
    # UTF-8 never uses the bytes of CR and LF inside a multi-byte character, so splitting the bytes
    # first is safe.
    lines = []
    for line_number, raw in enumerate(data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            malformed.report(
                path, line_number,
                f"not valid UTF-8 (byte 0x{raw[error.start]:02x} at byte {error.start + 1} of the line)",
                fix=f"Re-save the file as UTF-8 (for Korean text saved as CP949: iconv -f CP949 -t UTF-8 "
                    f"{path.name} > {path.stem}.utf8{path.suffix}, then replace the file)",
            )
            lines.append("")
    return "\n".join(lines)


@contextlib.contextmanager
def paused_garbage_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector while a reader builds millions of records.

    Parsing creates no reference cycles, but every allocation counts towards a collection that
    walks all live records again. Pausing it cut the time to load BACKCast (3.4 million words) from
    about 10 s to 6 s on a 2-core machine.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
