"""``camabc compare``: paired significance test of macro F1 between two trained runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from camabc_core.errors import CamabcError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="test whether two runs differ in macro F1",
        description=(
            "Pair the per-sample predictions of RUN_A and RUN_B on the same split (written by "
            "camabc train or camabc eval) and test the macro-F1 difference. Multi-seed directories "
            "are paired seed by seed and the statistic is the mean difference over seeds. Both runs "
            "must have scored the same samples: the same corpus, data settings and run.seed, because "
            "run.seed also draws the train/validation/test split and the NoBC sampling points. Runs "
            "that differ in run.seed are rejected, so vary the model or training settings, not the seed."
        ),
    )
    parser.add_argument("run_a", type=Path, metavar="RUN_A")
    parser.add_argument("run_b", type=Path, metavar="RUN_B")
    parser.add_argument("--method", choices=("randomization", "bootstrap"), default="randomization",
                        help="approximate randomisation (default) or paired bootstrap")
    parser.add_argument("--split", default="test",
                        help="split whose predictions are compared (default: test)")
    parser.add_argument("--rounds", type=int, metavar="N",
                        help="random swap patterns or bootstrap resamples (default: 10000 / 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the test's own random draws")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run_compare)


def load_prediction_sets(run_dir: Path, split: str) -> dict[str, dict]:
    """Predictions by seed label ("" for a single run) from a run or multi-seed directory."""
    from camabc_core.commands.eval import seed_run_dirs
    from camabc_core.training.evaluation import read_predictions

    if (run_dir / "recipe.yaml").is_file():
        return {"": read_predictions(run_dir, split)}
    runs = seed_run_dirs(run_dir)
    if not runs:
        raise CamabcError(f"{run_dir} contains neither recipe.yaml nor seed-<N> run directories")
    return {f"seed-{seed}": read_predictions(path, split) for seed, path in runs.items()}


def paired_groups(sets_a: dict[str, dict], sets_b: dict[str, dict], run_a: Path, run_b: Path):
    """Build PairedGroups, checking that both runs scored the same samples with the same labels."""
    import numpy as np

    from camabc_core.metrics import PairedGroup

    if set(sets_a) != set(sets_b):
        if len(sets_a) == 1 and len(sets_b) == 1:
            sets_b = {next(iter(sets_a)): next(iter(sets_b.values()))}
        else:
            raise CamabcError(f"{run_a} has runs {sorted(sets_a)} but {run_b} has {sorted(sets_b)}; "
                              "compare runs trained with the same seeds")
    groups, classes = [], None
    for key in sorted(sets_a):
        a, b = sets_a[key], sets_b[key]
        if a["classes"] != b["classes"]:
            raise CamabcError(f"{run_a} uses classes {a['classes']} but {run_b} uses {b['classes']}")
        classes = a["classes"]
        keys_a = [(s["conversation_id"], s["time"], s["speaker"], s["label"]) for s in a["samples"]]
        keys_b = [(s["conversation_id"], s["time"], s["speaker"], s["label"]) for s in b["samples"]]
        if keys_a != keys_b:
            raise CamabcError(
                f"{run_a} and {run_b} scored different samples{' for ' + key if key else ''}; a paired "
                "test needs the same corpus, split settings and seed"
            )
        groups.append(PairedGroup(
            y_true=np.array([s["label"] for s in a["samples"]]),
            pred_a=np.array([s["prediction"] for s in a["samples"]]),
            pred_b=np.array([s["prediction"] for s in b["samples"]]),
        ))
    return groups, classes


def run_compare(args: argparse.Namespace) -> int:
    import numpy as np

    from camabc_core.metrics import macro_f1_score, paired_bootstrap_test, paired_randomization_test

    groups, classes = paired_groups(load_prediction_sets(args.run_a, args.split),
                                    load_prediction_sets(args.run_b, args.split), args.run_a, args.run_b)
    num_classes = len(classes)
    if args.method == "randomization":
        result = paired_randomization_test(groups, num_classes, rounds=args.rounds or 10_000, seed=args.seed)
    else:
        result = paired_bootstrap_test(groups, num_classes, rounds=args.rounds or 1_000, seed=args.seed)
    score_a = float(np.mean([macro_f1_score(g.y_true, g.pred_a, num_classes) for g in groups]))
    score_b = float(np.mean([macro_f1_score(g.y_true, g.pred_b, num_classes) for g in groups]))
    if args.json:
        print(json.dumps({"run_a": str(args.run_a), "run_b": str(args.run_b), "split": args.split,
                          "macro_f1_a": score_a, "macro_f1_b": score_b, "groups": len(groups),
                          **result.to_dict()}, indent=2))
        return 0
    samples = sum(len(g.y_true) for g in groups)
    print(f"split {args.split}: {samples} paired samples in {len(groups)} run(s)")
    print(f"macro F1  A {100 * score_a:.2f}  ({args.run_a})")
    print(f"macro F1  B {100 * score_b:.2f}  ({args.run_b})")
    print(f"difference A - B {100 * result.observed_difference:+.2f} points")
    detail = "exact, every swap pattern" if result.exact else f"{result.rounds} rounds"
    print(f"{result.method} test ({detail}): p = {result.p_value:.4f}")
    if result.confidence_interval is not None:
        low, high = result.confidence_interval
        print(f"95% bootstrap interval of the difference: [{100 * low:+.2f}, {100 * high:+.2f}] points")
    return 0
