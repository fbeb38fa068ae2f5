"""The ``camabc`` command line. Each sub-command lives in ``camabc_core.commands.<name>``."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from camabc_core import __version__
from camabc_core.errors import CamabcError

# Each module defines ``add_parser(subparsers)`` which registers its sub-command and sets
# ``func(args) -> int`` as the parser default. Add a module name here when you add a command.
COMMAND_MODULES: tuple[str, ...] = (
    "plugins", "recipe", "data", "train", "eval", "compare", "tokenizer", "predict", "demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="camabc", description="Multimodal backchannel prediction with CAMA-BC."
    )
    parser.add_argument("--version", action="version", version=f"camabc {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"camabc_core.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CamabcError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
