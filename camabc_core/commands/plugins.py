"""``camabc plugins``: every component with its kind, name and origin, name conflicts and failed plugins."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from camabc_core.registry import Registry

#: Appended to the NAME cell of a component that more than one plugin registers.
CONFLICT_MARK = " (conflict)"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list installed components and plugins that failed to load",
        description=(
            "List every component (encoder, aligner, fusion, dataset, animator, reference_generator) "
            "with the plugin and distribution that provide it, then every component name that two "
            "plugins register and every plugin that failed to load. Exits with status 1 when a name "
            "is registered twice, because recipes cannot use that name until one plugin is disabled."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from camabc_core.registry import get_registry

    listing = describe_plugins(get_registry())
    if args.json:
        print(json.dumps(listing, indent=2))
    else:
        print_listing(listing)
    return 1 if listing["conflicts"] else 0


def describe_plugins(registry: Registry) -> dict[str, list[dict[str, Any]]]:
    """Return the components, name conflicts, failed plugins and disabled plugins as JSON-ready lists."""
    conflicts = [
        {
            "kind": conflict.kind,
            "name": conflict.name,
            "plugins": [
                {"plugin": claim.plugin, "distribution": claim.distribution, "version": claim.version}
                for claim in conflict.claims
            ],
            "message": conflict.describe(),
        }
        for conflict in registry.conflicts()
    ]
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
    return {"components": components, "conflicts": conflicts, "failures": failures, "disabled": disabled}


def print_listing(listing: dict[str, list[dict[str, Any]]]) -> None:
    """Print the component table, then the conflicts, failures and disabled plugins when there are any."""
    columns = ("kind", "name", "plugin", "distribution", "version")
    conflicting = {(conflict["kind"], conflict["name"]) for conflict in listing["conflicts"]}
    if listing["components"]:
        rows = []
        for component in listing["components"]:
            row = [component[column] or "-" for column in columns]
            if (component["kind"], component["name"]) in conflicting:
                row[1] += CONFLICT_MARK
            rows.append(row)
        print(_table(columns, rows))
    else:
        print("No components are registered.")

    conflicts = listing["conflicts"]
    if conflicts:
        print(f"\nComponent names registered by more than one plugin ({len(conflicts)}):")
        for conflict in conflicts:
            print(f"  {conflict['message']}")
    failures = listing["failures"]
    if failures:
        print(f"\nPlugins that failed to load ({len(failures)}):")
        for failure in failures:
            origin = f"{failure['distribution'] or 'registered by hand'} {failure['version'] or ''}".strip()
            print(f"  {failure['plugin']} ({origin}): {failure['reason']}")
    if listing["disabled"]:
        names = ", ".join(row["plugin"] for row in listing["disabled"])
        print(f"\nDisabled by CAMABC_DISABLE_PLUGINS: {names}")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip()
        for row in [[name.upper() for name in header], *rows]
    ]
    return "\n".join(lines)
