"""``camabc train``: Context Alignment then Backchannel Alignment, one run per seed, then reports."""

from __future__ import annotations

import argparse
from pathlib import Path

from camabc_core.commands.arguments import add_recipe_arguments, recipe_from_args


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model from a recipe and report test scores",
        description=(
            "Run the recipe's enabled stages (Context Alignment, then Backchannel Alignment with "
            "early stopping on validation macro F1), evaluate the best checkpoint on the recipe's "
            "evaluation split and write metrics.json, report.md and figures into the run directory. "
            "Launch with `accelerate launch -m camabc_core.cli train ...` for several GPUs."
        ),
    )
    add_recipe_arguments(parser)
    parser.add_argument(
        "--seeds", type=int, nargs="+", metavar="SEED",
        help="train once per seed into OUTPUT_DIR/seed-<seed> and report mean ± std "
             "(default: run.seeds, else the single run.seed)",
    )
    parser.add_argument(
        "--output-dir", type=Path, metavar="DIR",
        help="run directory (default: run.output_dir/run.name)",
    )
    parser.add_argument(
        "--resume", action="store_true",
        help="continue from DIR/checkpoints/last with the same recipe; a finished seed is only re-evaluated",
    )
    parser.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from accelerate import PartialState

    from camabc_core.training.runner import default_run_dir, train_run, train_seeds

    recipe = recipe_from_args(args)
    output_dir = Path(args.output_dir or default_run_dir(recipe))
    seeds = args.seeds or recipe.run.seeds
    if seeds:
        _, aggregate = train_seeds(recipe, seeds, output_dir, resume=args.resume)
        scored = aggregate is not None
    else:
        scored = train_run(recipe, output_dir, resume=args.resume).metrics is not None
    # Under `accelerate launch` only the main process writes the report, so only it prints one.
    if PartialState().is_main_process:
        if scored:
            print((output_dir / "report.md").read_text(encoding="utf-8"))
        print(f"run directory: {output_dir}")
    return 0
