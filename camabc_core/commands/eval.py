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
            "scheme's full class list into RUN_DIR/eval/<split>/. The files that camabc train wrote "
            "are left unchanged. A directory of seed-<N> runs is scored per seed and aggregated into "
            "its own eval/<split>/."
        ),
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="directory written by camabc train")
    parser.add_argument("--split", choices=("train", "validation", "test"), default="test",
                        help="split to score (default: test)")
    parser.add_argument("--batch-size", type=int, metavar="N",
                        help="samples per batch (default: the recipe's evaluation.batch_size)")
    # Only these keys make sense once a model is trained; the others describe the model itself.
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a key of the saved recipe, e.g. --set data.root=/new/corpus/path when the corpus "
             "moved; accepts data.*, evaluation.*, run.cpu_threads and run.num_workers; repeatable",
    )
    parser.set_defaults(func=run_eval)


def seed_run_dirs(run_dir: Path) -> dict[int, Path]:
    """Map seed -> run directory for a multi-seed output directory (``seed-<N>`` sub-directories)."""
    from camabc_core.training.run_dir import seed_run_dirs as find_seed_runs

    return find_seed_runs(run_dir)


def run_eval(args: argparse.Namespace) -> int:
    from camabc_core.recipe_loading import load_recipe
    from camabc_core.reports import metrics_table, write_aggregate_report
    from camabc_core.training.run_dir import RECIPE_FILE, eval_dir
    from camabc_core.training.runner import check_eval_overrides, evaluate_run_dir

    check_eval_overrides(args.overrides)
    run_dir: Path = args.run_dir
    if (run_dir / RECIPE_FILE).is_file():
        metrics = evaluate_run_dir(run_dir, args.split, args.batch_size, args.overrides)
        print(metrics_table([(run_dir.name, [metrics])]), end="")
        if metrics.absent_classes:
            print(f"no {args.split} samples of: {', '.join(metrics.absent_classes)} (F1 reported as 0)")
        print(f"scores written to {eval_dir(run_dir, args.split)}")
        return 0
    runs = seed_run_dirs(run_dir)
    if not runs:
        raise CamabcError(f"{run_dir} contains neither recipe.yaml nor seed-<N> run directories")
    per_seed = {seed: evaluate_run_dir(path, args.split, args.batch_size, args.overrides)
                for seed, path in runs.items()}
    # The aggregate carries the recipe's run name, as the one written by camabc train does.
    name = load_recipe(next(iter(runs.values())) / RECIPE_FILE).run.name
    output_dir = eval_dir(run_dir, args.split)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_aggregate_report(output_dir, name, per_seed, args.split)
    print(metrics_table([(name, list(per_seed.values()))]), end="")
    print(f"scores written to {output_dir} and each seed's eval/{args.split}/")
    return 0
