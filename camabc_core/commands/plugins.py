"""``camabc plugins``: every component with its kind, name and origin, and every plugin that failed."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from camabc_core.registry import get_registry


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list installed components and plugins that failed to load",
        description=(
            "List every component (encoder, aligner, fusion, dataset, animator, reference_generator) "
            "with the plugin and distribution that provide it, then every plugin that failed to load."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    registry = get_registry()
    components = [
        {
            "kind": info.kind,
            "name": info.name,
            "plugin": info.plugin,
            "distribution": info.distribution,
            "version": info.version,
        }
        for info in registry.components()
    ]
    failures = [
        {
            "plugin": failure.plugin,
            "distribution": failure.distribution,
            "version": failure.version,
            "entry_point": failure.entry_point,
            "reason": failure.reason,
        }
        for failure in registry.failures()
    ]
    disabled = [
        {"plugin": source.name, "distribution": source.distribution, "version": source.version}
        for source in registry.disabled_plugins()
    ]

    if args.json:
        print(json.dumps({"components": components, "failures": failures, "disabled": disabled}, indent=2))
        return 0

    columns = ("kind", "name", "plugin", "distribution", "version")
    if components:
        print(_table(columns, [[row[column] or "-" for column in columns] for row in components]))
    else:
        print("No components are registered.")
    if failures:
        print(f"\nPlugins that failed to load ({len(failures)}):")
        for failure in failures:
            origin = f"{failure['distribution'] or 'registered by hand'} {failure['version'] or ''}".strip()
            print(f"  {failure['plugin']} ({origin}): {failure['reason']}")
    if disabled:
        names = ", ".join(row["plugin"] for row in disabled)
        print(f"\nDisabled by CAMABC_DISABLE_PLUGINS: {names}")
    return 0


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in [[name.upper() for name in header], *rows]
    ]
    return "\n".join(lines)
