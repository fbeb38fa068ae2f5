"""``camabc eval``: score a trained run (or every seed of a multi-seed run) on one split."""

from __future__ import annotations

import argparse
from pathlib import Path

from camabc_core.errors import CamabcError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score a trained run on a split",
        description=(
            "Rebuild the model from RUN_DIR, rebuild the split from the corpus at the recipe's "
            "data.root, and write per-sample predictions, per-class F1 and macro F1 over the label "
            "scheme's full class list. A directory of seed-<N> runs is scored per seed and aggregated."
        ),
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="directory written by camabc train")
    parser.add_argument("--split", choices=("train", "validation", "test"), default="test",
                        help="split to score (default: test)")
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help="samples per batch (default: the recipe's evaluation.batch_size)")
    parser.set_defaults(func=run_eval)


def seed_run_dirs(run_dir: Path) -> dict[int, Path]:
    """Map seed -> run directory for a multi-seed output directory (``seed-<N>`` sub-directories)."""
    runs = {}
    for child in sorted(run_dir.glob("seed-*")):
        suffix = child.name.removeprefix("seed-")
        if child.is_dir() and suffix.isdigit() and (child / "recipe.yaml").is_file():
            runs[int(suffix)] = child
    return runs


def run_eval(args: argparse.Namespace) -> int:
    from camabc_core.reports import metrics_table, write_aggregate_report
    from camabc_core.training.runner import evaluate_run_dir

    run_dir: Path = args.run_dir
    if (run_dir / "recipe.yaml").is_file():
        metrics = evaluate_run_dir(run_dir, args.split, args.batch_size)
        print(metrics_table([(run_dir.name, [metrics])]), end="")
        if metrics.absent_classes:
            print(f"no {args.split} samples of: {', '.join(metrics.absent_classes)} (F1 reported as 0)")
        return 0
    runs = seed_run_dirs(run_dir)
    if not runs:
        raise CamabcError(f"{run_dir} contains neither recipe.yaml nor seed-<N> run directories")
    per_seed = {seed: evaluate_run_dir(path, args.split, args.batch_size) for seed, path in runs.items()}
    write_aggregate_report(run_dir, run_dir.name, per_seed, args.split)
    print(metrics_table([(run_dir.name, list(per_seed.values()))]), end="")
    return 0
