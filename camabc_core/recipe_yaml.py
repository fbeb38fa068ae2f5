"""YAML for recipes: a loader that keeps key lines and finds duplicate keys, and a readable dumper."""

from __future__ import annotations

import codecs
import os
import re
import tempfile
import typing
from pathlib import Path
from typing import Any

import attrs
import yaml

from camabc_core.file_permissions import apply_umask_permissions


class LineMapping(dict):
    """A YAML mapping that remembers the 1-based line of each key, for error messages."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[Any, int] = {}


class RecipeLoader(yaml.SafeLoader):
    """SafeLoader that records key lines, reports duplicate keys and reads ``5e-6`` as a float.

    YAML 1.1 (PyYAML) reads exponent numbers without a dot, such as ``5e-6``, as strings, which
    would make a learning rate a type error.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.duplicate_keys: list[str] = []


def _construct_mapping(loader: RecipeLoader, node: yaml.MappingNode) -> LineMapping:
    loader.flatten_mapping(node)  # resolves "<<" merge keys
    mapping = LineMapping()
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, typing.Hashable):
            raise yaml.constructor.ConstructorError(
                None, None, f"unhashable key {key!r}", key_node.start_mark
            )
        if key in mapping:
            loader.duplicate_keys.append(
                f"line {line}: duplicate key {key!r} (first at line {mapping.lines[key]}); keep one"
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.lines[key] = line
    return mapping


RecipeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
RecipeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str) -> tuple[Any, list[str]]:
    """Parse YAML text into data with LineMapping mappings; return it and the duplicate-key problems.

    Raises ``yaml.YAMLError`` on a syntax error.
    """
    loader = RecipeLoader(text)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    return data, loader.duplicate_keys


@attrs.frozen
class TextProblem:
    """A problem at a place in a text: 1-based ``line`` and ``column`` (None when unknown) and the message."""

    line: int | None
    column: int | None
    message: str


def describe_yaml_error(error: yaml.YAMLError, text: str, first_line_offset: int = 0) -> TextProblem:
    """Turn a PyYAML error into one sentence with its line and column, without PyYAML's stream name.

    ``first_line_offset`` is added to columns on line 1, for text that follows a prefix such as the
    ``KEY=`` of a ``--set`` option.
    """

    def position(mark: yaml.Mark) -> tuple[int, int]:
        column = mark.column + 1 + (first_line_offset if mark.line == 0 else 0)
        return mark.line + 1, column

    if isinstance(error, yaml.reader.ReaderError):
        line, column = _line_and_column(text, error.position)
        column += first_line_offset if line == 1 else 0
        message = f"the non-printable character U+{error.character:04X} is not allowed in YAML; remove it"
        return TextProblem(line, column, message)
    if not isinstance(error, yaml.MarkedYAMLError):
        return TextProblem(None, None, str(error))

    message = error.problem or error.context or "syntax error"
    if "'\\t'" in message:
        message += "; indent with spaces, because YAML does not allow tabs there"
    problem_mark, context_mark = error.problem_mark, error.context_mark
    # The context ("while parsing a flow mapping") helps only when it points to another place, such
    # as the opening bracket of a mapping that is never closed.
    context_elsewhere = (
        error.problem is not None
        and context_mark is not None
        and problem_mark is not None
        and (context_mark.line, context_mark.column) != (problem_mark.line, problem_mark.column)
    )
    if context_elsewhere:
        context_line, context_column = position(context_mark)
        message += f" ({error.context} that starts at line {context_line}, column {context_column})"
    if error.note:
        message += f"; {error.note}"
    mark = problem_mark or context_mark
    if mark is None:
        return TextProblem(None, None, message)
    return TextProblem(*position(mark), message)


def describe_utf8_error(data: bytes, error: UnicodeDecodeError) -> TextProblem:
    """Locate the first byte that is not UTF-8 and describe how to convert the file."""
    offset = error.start
    line = data.count(b"\n", 0, offset) + 1
    line_start = data.rfind(b"\n", 0, offset) + 1
    # Columns count characters, so the valid UTF-8 before the bad byte is decoded to count them.
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        found = "the file starts with a UTF-16 byte order mark, so it is UTF-16, not UTF-8"
    else:
        found = f"byte 0x{data[offset]:02x} (byte offset {offset}) is not valid UTF-8"
    return TextProblem(
        line,
        column,
        f"{found}. Save the file as UTF-8, or convert it with e.g. `iconv -f latin1 -t utf-8 OLD > NEW` "
        "(-f cp949 for a Korean Windows file)",
    )


def excerpt_line(text: str, line: int, column: int | None) -> str:
    """Return the text of 1-based ``line``, plus a caret under ``column`` when it is known."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return ""
    source_line = lines[line - 1].expandtabs(1)  # one column per tab, so the caret stays aligned
    if column is None:
        return source_line
    return f"{source_line}\n{' ' * (column - 1)}^"


def _line_and_column(text: str, position: int) -> tuple[int, int]:
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    return line, column


class RecipeDumper(yaml.SafeDumper):
    """Block-style sections, with lists of scalars on one line (``layers: [9, 10, 11]``)."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.SequenceNode:
    flow = all(not isinstance(item, dict | list) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


RecipeDumper.add_representer(list, _represent_list)


def dump_yaml(data: Any) -> str:
    """Render plain data as YAML in recipe layout, keeping key order and non-ASCII text as is."""
    return yaml.dump(data, Dumper=RecipeDumper, sort_keys=False, allow_unicode=True, default_flow_style=False)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` beside ``path`` and rename it into place, so a crash never leaves half a file."""
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    ) as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        apply_umask_permissions(handle.name)
        os.replace(handle.name, path)
    except OSError:
        os.unlink(handle.name)
        raise
