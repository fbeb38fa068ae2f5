"""YAML for recipes: a loader that keeps key lines and finds duplicate keys, and a readable dumper."""

from __future__ import annotations

import os
import re
import tempfile
import typing
from pathlib import Path
from typing import Any

import yaml


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
        os.replace(handle.name, path)
    except OSError:
        os.unlink(handle.name)
        raise
