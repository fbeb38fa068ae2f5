"""``camabc recipe check`` and ``camabc recipe show``: validate recipes and print the resolved one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from camabc_core.commands.arguments import add_override_argument, add_recipe_arguments, recipe_from_args
from camabc_core.errors import CamabcError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("recipe", help="check recipes or print a resolved recipe")
    actions = parser.add_subparsers(dest="recipe_command", metavar="ACTION", required=True)

    check = actions.add_parser(
        "check",
        help="validate recipe files",
        description=(
            "Validate each recipe: unknown keys, value types, value ranges and component names "
            "(against the installed plugins). Prints OK or every problem per file."
        ),
    )
    check.add_argument("recipes", type=Path, nargs="+", metavar="RECIPE", help="YAML recipe files")
    add_override_argument(check)
    check.set_defaults(func=run_check)

    show = actions.add_parser(
        "show",
        help="print a recipe with every default and override filled in",
        description="Print the resolved recipe as YAML, as a run saves it.",
    )
    add_recipe_arguments(show)
    show.set_defaults(func=run_show)


def run_check(args: argparse.Namespace) -> int:
    # Imported here so that building the parser (camabc --help) does not load cattrs and the schema.
    from camabc_core.recipe_loading import InvalidRecipeError, load_recipe
    from camabc_core.recipe_validation import format_problem_list

    failed = 0
    for path in args.recipes:
        try:
            load_recipe(path, args.overrides)
        except InvalidRecipeError as error:
            failed += 1
            print(f"{path}: {len(error.problems)} problem{'s' if len(error.problems) != 1 else ''}")
            print(format_problem_list(error.problems))
        except CamabcError as error:
            failed += 1
            print(f"{path}: {error}")
        else:
            print(f"{path}: OK")
    if failed:
        print(f"{failed} of {len(args.recipes)} recipes are invalid.", file=sys.stderr)
        return 1
    return 0


def run_show(args: argparse.Namespace) -> int:
    from camabc_core.recipe_loading import recipe_to_yaml

    print(recipe_to_yaml(recipe_from_args(args)), end="")
    return 0
