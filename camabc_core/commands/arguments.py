"""Command-line arguments shared by every command that takes a recipe."""

from __future__ import annotations

import argparse
from pathlib import Path

from camabc_core.recipe import Recipe

SET_HELP = (
    "override one recipe key, e.g. --set data.window.num_frames=8 or --set model.aligner.layers=[9,11]; "
    "the value is read as YAML (8 is an integer, null disables a section); repeat for several keys"
)


def add_override_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--set KEY=VALUE`` (repeatable), stored as ``args.overrides``."""
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=SET_HELP,
    )


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``RECIPE`` positional argument and ``--set`` overrides; read them with ``recipe_from_args``."""
    parser.add_argument("recipe", type=Path, metavar="RECIPE", help="YAML recipe file")
    add_override_argument(parser)


def recipe_from_args(args: argparse.Namespace) -> Recipe:
    """Load and validate ``args.recipe`` with ``args.overrides`` applied."""
    from camabc_core.recipe_loading import load_recipe

    return load_recipe(args.recipe, args.overrides)
