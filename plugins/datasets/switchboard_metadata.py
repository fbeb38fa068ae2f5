"""Speaker metadata of Switchboard-1 from the LDC tables ``caller_tab.csv`` and ``conv_tab.csv``.

Both tables are comma-separated without a header, with string fields in double quotes and spaces
after the commas (a header row, if present, is skipped). Columns used:

- ``caller_tab.csv``: 0 caller number, 3 sex (``"FEMALE"``/``"MALE"``), 4 birth year,
  5 dialect area, 6 education level (0-3, 9 unknown).
- ``conv_tab.csv``: 0 conversation number, 2 caller on channel A, 3 caller on channel B,
  4 topic number, 6 recording day as YYMMDD.

NOTE: these column positions are the ones that published Switchboard tools read from the tables of
the LDC97S62 documentation (https://catalog.ldc.upenn.edu/docs/LDC97S62/). The real tables were not
available when this module was written, so the tests use hand-made tables of that layout.
"""

from __future__ import annotations

import csv
from pathlib import Path

import attrs

from camabc_core.errors import CorpusFormatError

CALLER_TABLE_NAMES = ("caller_tab.csv", "caller.tab")
CONVERSATION_TABLE_NAMES = ("conv_tab.csv", "conv.tab")


@attrs.frozen
class SwitchboardSpeaker:
    """One caller as the LDC tables describe them; unknown numbers are None."""

    caller_id: str
    #: "female", "male" or "" when the table leaves it blank.
    sex: str
    birth_year: int | None
    dialect_area: str
    education: int | None
    #: Age at the recording, estimated as recording year minus birth year (one year high before
    #: the speaker's birthday).
    age: int | None


def conversation_id(number: int | str) -> str:
    """Return the id the ``swbd`` reader gives conversation ``number`` (2001 -> ``"sw2001"``)."""
    return f"sw{int(number):04d}"


def find_table(root: str | Path, names: tuple[str, ...]) -> Path:
    """Return the first file under ``root`` (searched recursively) named one of ``names``."""
    root = Path(root)
    for name in names:
        direct = root / name
        if direct.is_file():
            return direct
    for name in names:
        for found in sorted(root.rglob(name)):
            return found
    raise CorpusFormatError(f"{' or '.join(names)} not found under {root}; copy it from the "
                            f"Switchboard documentation (LDC97S62 docs) into the corpus root")


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """Return ``(line number, stripped fields)`` of the data rows of an LDC table."""
    rows = []
    with path.open(encoding="latin-1", newline="") as handle:
        for line_number, fields in enumerate(csv.reader(handle, skipinitialspace=True), start=1):
            fields = [field.strip().strip('"').strip() for field in fields]
            if not fields or not any(fields):
                continue
            if not fields[0].isdigit():
                if line_number == 1:
                    continue  # a header row
                raise CorpusFormatError(f"{path}:{line_number}: expected a number in the first "
                                        f"column, found {fields[0]!r}")
            rows.append((line_number, fields))
    return rows


def _optional_int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def read_caller_table(path: str | Path) -> dict[str, SwitchboardSpeaker]:
    """Read ``caller_tab.csv`` into speakers keyed by caller number (``age`` is None here)."""
    path = Path(path)
    callers = {}
    for line_number, fields in _rows(path):
        if len(fields) < 7:
            raise CorpusFormatError(f"{path}:{line_number}: expected at least 7 columns (caller, pin, "
                                    f"target, sex, birth year, dialect, education), found {len(fields)}")
        birth_year = _optional_int(fields[4])
        education = _optional_int(fields[6])
        callers[fields[0]] = SwitchboardSpeaker(
            caller_id=fields[0],
            sex=fields[3].lower(),
            birth_year=birth_year if birth_year else None,
            dialect_area=fields[5],
            education=education if education is not None and education != 9 else None,
            age=None,
        )
    return callers


def read_conversation_table(path: str | Path) -> dict[str, tuple[str, str, int | None]]:
    """Read ``conv_tab.csv`` into ``conversation id -> (caller A, caller B, recording year)``."""
    path = Path(path)
    conversations = {}
    for line_number, fields in _rows(path):
        if len(fields) < 4:
            raise CorpusFormatError(f"{path}:{line_number}: expected at least 4 columns (conversation, "
                                    f"active, caller A, caller B), found {len(fields)}")
        talk_day = fields[6] if len(fields) > 6 else ""
        year = 1900 + int(talk_day[:2]) if len(talk_day) == 6 and talk_day.isdigit() else None
        conversations[conversation_id(fields[0])] = (fields[2], fields[3], year)
    return conversations


def read_switchboard_metadata(root: str | Path) -> dict[str, tuple[SwitchboardSpeaker, SwitchboardSpeaker]]:
    """Return ``conversation id -> (speaker on channel A, speaker on channel B)``.

    Conversation ids are those of the ``swbd`` reader (``"sw2001"``). The tables are found anywhere
    under ``root``. A caller missing from ``caller_tab.csv`` gets a speaker with only ``caller_id``.

    :raises CorpusFormatError: when a table is missing or has a malformed row (file and line named).
    """
    callers = read_caller_table(find_table(root, CALLER_TABLE_NAMES))
    metadata = {}
    for conversation, (caller_a, caller_b, year) in read_conversation_table(
        find_table(root, CONVERSATION_TABLE_NAMES)
    ).items():
        pair = []
        for caller in (caller_a, caller_b):
            speaker = callers.get(caller) or SwitchboardSpeaker(caller, "", None, "", None, None)
            if year is not None and speaker.birth_year is not None:
                speaker = attrs.evolve(speaker, age=year - speaker.birth_year)
            pair.append(speaker)
        metadata[conversation] = (pair[0], pair[1])
    return metadata
