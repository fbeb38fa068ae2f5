"""Load recipes from YAML into the attrs classes of ``camabc_core.recipe``, strictly, and save them back.

Loading is strict. An unknown key anywhere is an error with its dotted path and the closest valid key,
so a mistyped key never leaves its default in place. A value of the wrong type is an error naming the
key and the expected type (``8.5`` is not an integer, ``"yes"`` is not a boolean). Duplicate keys are
errors too. All problems of a file, ``--set`` overrides included, are reported in one InvalidRecipeError.

    recipe = load_recipe("recipes/demo.yaml", overrides=["data.window.num_frames=8"])
    save_recipe(recipe, run_dir / "recipe.yaml")
"""

from __future__ import annotations

import copy
import functools
import os
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union

import attrs
import cattrs
import yaml
from cattrs.cols import list_structure_factory, mapping_structure_factory
from cattrs.errors import ClassValidationError, IterableValidationError

from camabc_core.recipe import Recipe
from camabc_core.recipe_validation import InvalidRecipeError, validate_recipe
from camabc_core.recipe_yaml import (
    LineMapping,
    describe_utf8_error,
    describe_yaml_error,
    dump_yaml,
    excerpt_line,
    parse_yaml,
    write_text_atomic,
)
from camabc_core.suggestions import closest_match

if TYPE_CHECKING:
    from camabc_core.registry import Registry

__all__ = [
    "InvalidRecipeError",
    "load_recipe",
    "parse_override",
    "recipe_from_dict",
    "recipe_to_dict",
    "recipe_to_yaml",
    "save_recipe",
    "validate_recipe",
]

KeyPath = tuple[str | int, ...]


def _parse_yaml_file(text: str, source: str) -> tuple[Any, list[str]]:
    """Parse a recipe file; a syntax error becomes "FILE:LINE:COLUMN: invalid YAML: ..." and the line."""
    try:
        return parse_yaml(text)
    except yaml.YAMLError as error:
        problem = describe_yaml_error(error, text)
        if problem.line is None:
            raise InvalidRecipeError(source, [f"{source}: invalid YAML: {problem.message}"]) from error
        where = f"{source}:{problem.line}" + (f":{problem.column}" if problem.column is not None else "")
        excerpt = excerpt_line(text, problem.line, problem.column)
        message = f"{where}: invalid YAML: {problem.message}" + (f"\n{excerpt}" if excerpt else "")
        raise InvalidRecipeError(source, [message]) from error


# -- overrides ----------------------------------------------------------------------------------


def parse_override(text: str) -> tuple[tuple[str, ...], Any]:
    """Split ``a.b.c=value`` into the key path and the YAML-parsed value (``8`` is an int, ``null`` None)."""
    key, separator, raw_value = text.partition("=")
    parts = tuple(part.strip() for part in key.split("."))
    if not separator or not all(parts):
        raise InvalidRecipeError(
            "--set", [f"--set {text!r}: expected KEY=VALUE with a dotted key, e.g. data.window.num_frames=8"]
        )
    try:
        value, duplicate_keys = parse_yaml(raw_value)
    except yaml.YAMLError as error:
        # Columns count from the start of KEY=VALUE, as the user typed it.
        problem = describe_yaml_error(error, raw_value, first_line_offset=len(key) + 1)
        where = ""
        if problem.line is not None:
            where = f" at line {problem.line}, column {problem.column}"
        message = f"--set {text!r}: invalid YAML{where}: {problem.message}"
        raise InvalidRecipeError("--set", [message]) from error
    if duplicate_keys:
        raise InvalidRecipeError("--set", [f"--set {text!r}: {problem}" for problem in duplicate_keys])
    return parts, value


def _apply_override(data: dict[str, Any], parts: tuple[str, ...], value: Any) -> str | None:
    """Set ``data[parts[0]]...[parts[-1]] = value``, creating missing sections; return a problem or None."""
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = LineMapping()
            node[part] = child
        elif not isinstance(child, dict):
            section = ".".join(parts[: depth + 1])
            kind = _with_article(_yaml_type_name(child))
            return f"{'.'.join(parts)} (from --set): {section} is {kind}, not a section"
        node = child
    node[parts[-1]] = value
    if isinstance(node, LineMapping):
        node.lines.pop(parts[-1], None)
    return None


# -- key checking -------------------------------------------------------------------------------


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _optional_inner(annotation: Any) -> tuple[Any, bool]:
    """Return (T, True) for ``T | None`` and (annotation, False) otherwise."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        arguments = [argument for argument in typing.get_args(annotation) if argument is not type(None)]
        if len(arguments) == 1:
            return arguments[0], True
    return annotation, False


@functools.cache
def _schema_paths(cls: type = Recipe, prefix: str = "") -> tuple[str, ...]:
    """Return every dotted key path of the schema, e.g. "model.aligner.temperature"."""
    paths: list[str] = []
    for name, annotation in _field_types(cls).items():
        path = f"{prefix}{name}"
        paths.append(path)
        inner, _ = _optional_inner(annotation)
        if attrs.has(inner):
            paths.extend(_schema_paths(inner, f"{path}."))
    return tuple(paths)


def _format_path(path: KeyPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = str(part)
    return text or "(top level)"


class _ProblemCollector:
    """Problems with their key path, tagged with the YAML line or "from --set"."""

    def __init__(self, data: Any, override_paths: Iterable[str]) -> None:
        self.data = data
        self.override_paths = list(override_paths)
        self.problems: list[str] = []

    def add(self, path: KeyPath, message: str) -> None:
        dotted = _format_path(path)
        if any(dotted == key or dotted.startswith((key + ".", key + "[")) for key in self.override_paths):
            where = " (from --set)"
        else:
            line = self._line_of(path)
            where = f" (line {line})" if line is not None else ""
        self.problems.append(f"{dotted}{where}: {message}")

    def _line_of(self, path: KeyPath) -> int | None:
        node, line = self.data, None
        for part in path:
            if isinstance(node, LineMapping) and part in node:
                line = node.lines.get(part, line)
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                break
        return line


def _check_keys(cls: type, data: Mapping[Any, Any], path: KeyPath, collector: _ProblemCollector) -> dict:
    """Report unknown keys and non-mapping sections under ``path``; return the data without them.

    The returned copy lets cattrs report type errors in the same pass; it is never used as a recipe
    because any problem fails the load.
    """
    fields = _field_types(cls)
    cleaned: dict[str, Any] = {}
    for key, value in data.items():
        key_path = (*path, key)
        if not isinstance(key, str):
            collector.add(key_path, f"keys must be strings, got {_yaml_type_name(key)} {key!r}")
            continue
        if key not in fields:
            collector.add(key_path, "unknown key." + _key_suggestion(key, path, fields))
            continue
        section_type, optional = _optional_inner(fields[key])
        if not attrs.has(section_type):
            cleaned[key] = value
        elif value is None and optional:
            cleaned[key] = None
        elif isinstance(value, Mapping):
            cleaned[key] = _check_keys(section_type, value, key_path, collector)
        else:
            expected = "a mapping of keys" + (" or null" if optional else "")
            hint = ""
            if isinstance(value, str) and "name" in _field_types(section_type):
                hint = f"; write {key}: {{name: {value}}}"
            collector.add(key_path, f"expected {expected}, got {_describe_value(value)}{hint}")
    return cleaned


def _key_suggestion(key: str, path: KeyPath, fields: Mapping[str, Any]) -> str:
    """Suggest a sibling key, else the same (or a close) key in another section."""
    sibling = closest_match(key, fields)
    if sibling is not None:
        return f" Did you mean {sibling!r}?"
    section_path = _format_path(path) if path else ""
    leaf_names = {candidate.rpartition(".")[2] for candidate in _schema_paths()}
    leaf = key if key in leaf_names else closest_match(key, leaf_names)
    elsewhere = []
    for candidate in _schema_paths():
        parent, _, name = candidate.rpartition(".")
        if name == leaf and parent != section_path:
            elsewhere.append(candidate)
    if elsewhere:
        listed = " or ".join(repr(candidate) for candidate in elsewhere[:3])
        more = " or another section" if len(elsewhere) > 3 else ""
        return f" Did you mean {listed}{more}?"
    return f" Valid keys here: {', '.join(fields)}."


# -- structuring --------------------------------------------------------------------------------


class _WrongTypeError(TypeError):
    """Raised by the strict hooks; the message is built later from the declared type and the value."""


def _structure_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _WrongTypeError
    return value


def _structure_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _WrongTypeError
    return float(value)


def _structure_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise _WrongTypeError
    return value


def _structure_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise _WrongTypeError
    return value


def _strict_container_factory(base_factory: Any, container: type) -> Any:
    def factory(annotation: Any, converter: cattrs.Converter) -> Any:
        structure_items = base_factory(annotation, converter)

        def structure(value: Any, _: type) -> Any:
            # cattrs would iterate a string into characters or a mapping into its keys.
            if not isinstance(value, container):
                raise _WrongTypeError
            return structure_items(value, annotation)

        return structure

    return factory


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook_factory(
        lambda annotation: typing.get_origin(annotation) is list,
        _strict_container_factory(list_structure_factory, list),
    )
    converter.register_structure_hook_factory(
        lambda annotation: typing.get_origin(annotation) is dict,
        _strict_container_factory(mapping_structure_factory, dict),
    )
    return converter


_CONVERTER = _make_converter()


def _collect_structure_errors(
    error: BaseException, path: KeyPath, annotation: Any, collector: _ProblemCollector
) -> None:
    """Walk cattrs' exception group and add one problem per leaf with its key path."""
    if isinstance(error, ClassValidationError | IterableValidationError):
        with_notes, without_notes = error.group_exceptions()
        for child, note in with_notes:
            part = note.name if hasattr(note, "name") else note.index
            _collect_structure_errors(child, (*path, part), note.type, collector)
        for child in without_notes:
            collector.add(path, str(child))
        return
    if isinstance(error, KeyError):
        collector.add(path, "required key is missing")
        return
    value = _value_at(collector.data, path)
    message = f"expected {_describe_type(annotation)}, got {_describe_value(value)}"
    literal_values = _literal_values(annotation)
    if literal_values and isinstance(value, str):
        match = closest_match(value, [str(option) for option in literal_values])
        if match is not None:
            message += f". Did you mean {match!r}?"
    collector.add(path, message)


def _value_at(data: Any, path: KeyPath) -> Any:
    for part in path:
        data = data[part]
    return data


def _literal_values(annotation: Any) -> tuple[Any, ...]:
    inner, _ = _optional_inner(annotation)
    return typing.get_args(inner) if typing.get_origin(inner) is Literal else ()


_TYPE_NAMES = {int: "integer", float: "number", str: "string", bool: "boolean"}


def _describe_type(annotation: Any) -> str:
    inner, optional = _optional_inner(annotation)
    suffix = " or null" if optional else ""
    origin = typing.get_origin(inner)
    if origin is Literal:
        return "one of " + ", ".join(repr(option) for option in typing.get_args(inner)) + suffix
    if origin is list:
        (item,) = typing.get_args(inner) or (Any,)
        item_name = _TYPE_NAMES.get(item)
        return (f"a list of {item_name}s" if item_name else "a list") + suffix
    if origin is dict or attrs.has(inner):
        return "a mapping of keys" + suffix
    if inner in _TYPE_NAMES:
        article = "an" if inner is int else "a"
        return f"{article} {_TYPE_NAMES[inner]}{suffix}"
    return f"{getattr(inner, '__name__', inner)}{suffix}"


def _yaml_type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _with_article(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _describe_value(value: Any) -> str:
    if value is None or isinstance(value, Mapping | list):
        return _yaml_type_name(value)
    return f"{_yaml_type_name(value)} {value!r}"


def recipe_from_dict(data: Any, overrides: Iterable[str] = (), *, source: str = "recipe") -> Recipe:
    """Structure plain data (as parsed from YAML) into a Recipe, applying ``KEY=VALUE`` overrides first.

    Raises InvalidRecipeError listing every unknown key, wrong type and invalid override. ``data`` is
    not modified. Semantic rules are checked separately by ``validate_recipe``.
    """
    return _structure_recipe(copy.deepcopy(data), overrides, source, [])


def _structure_recipe(data: Any, overrides: Iterable[str], source: str, problems: list[str]) -> Recipe:
    if data is None:
        data = LineMapping()  # an empty file changes no default
    if not isinstance(data, dict):
        problems.append(
            f"a recipe is a mapping of sections (run, data, model, ...), got {_describe_value(data)}"
        )
        raise InvalidRecipeError(source, problems)

    override_paths = []
    for text in overrides:
        try:
            parts, value = parse_override(text)
        except InvalidRecipeError as error:
            problems.extend(error.problems)
            continue
        problem = _apply_override(data, parts, value)
        if problem is not None:
            problems.append(problem)
        override_paths.append(".".join(parts))

    collector = _ProblemCollector(data, override_paths)
    cleaned = _check_keys(Recipe, data, (), collector)
    recipe = None
    try:
        recipe = _CONVERTER.structure(cleaned, Recipe)
    except ClassValidationError as error:
        _collect_structure_errors(error, (), Recipe, collector)
    problems.extend(collector.problems)
    if problems or recipe is None:
        raise InvalidRecipeError(source, problems)
    return recipe


def load_recipe(
    path: str | os.PathLike[str],
    overrides: Iterable[str] = (),
    *,
    registry: Registry | None = None,
    validate: bool = True,
) -> Recipe:
    """Read a YAML recipe, apply ``KEY=VALUE`` overrides and return the Recipe.

    With ``validate`` (the default) the semantic rules and component names are checked too, against
    ``registry`` or the process-wide registry. Every problem is reported in one InvalidRecipeError.
    """
    source = str(path)
    try:
        data_bytes = Path(path).read_bytes()
    except OSError as error:
        raise InvalidRecipeError(source, [f"cannot read the file: {error.strerror or error}"]) from error
    try:
        text = data_bytes.decode("utf-8")
    except UnicodeDecodeError as error:
        problem = describe_utf8_error(data_bytes, error)
        message = f"{source}:{problem.line}:{problem.column}: {problem.message}"
        raise InvalidRecipeError(source, [message]) from error
    data, problems = _parse_yaml_file(text, source)
    recipe = _structure_recipe(data, overrides, source, problems)
    if validate:
        validate_recipe(recipe, registry, source=source)
    return recipe


# -- saving -------------------------------------------------------------------------------------


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """Return the recipe as plain data (dicts, lists, scalars) with every default filled in."""
    return _CONVERTER.unstructure(recipe)


def recipe_to_yaml(recipe: Recipe) -> str:
    """Render the full recipe as YAML that ``load_recipe`` reads back to an equal Recipe."""
    return dump_yaml(recipe_to_dict(recipe))


def save_recipe(recipe: Recipe, path: str | os.PathLike[str]) -> Path:
    """Write the resolved recipe (defaults and overrides applied) atomically; return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    header = "# Resolved camabc recipe: every value, defaults and --set overrides included.\n"
    write_text_atomic(target, header + recipe_to_yaml(recipe))
    return target
