"""Run reports: metrics.json, a Markdown table in the layout of backchannel papers, and two figures.

Tables list F1 per class in the label scheme's order, then macro F1, all multiplied by 100 with two
decimals (``NoBC | Continuer | Understanding | Empathy | Macro F1`` for the four-class scheme,
``NoBC | BC | Macro F1`` for the binary one). Several seeds give ``mean ± std`` cells.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from camabc_core.metrics import ClassificationMetrics, mean_and_std
from camabc_core.training.atomic import atomic_path, atomic_write_json, atomic_write_text

#: Short names of the training stages in figures.
STAGE_TITLES = {"context_alignment": "CA", "backchannel_alignment": "BA"}


def format_score(value: float) -> str:
    """Format a score in [0, 1] as a percentage with two decimals."""
    return f"{100 * value:.2f}"


def format_mean_std(values: Sequence[float]) -> str:
    mean, std = mean_and_std(values)
    return f"{100 * mean:.2f} ± {100 * std:.2f}"


def metrics_table(rows: Sequence[tuple[str, Sequence[ClassificationMetrics]]]) -> str:
    """Render a Markdown table with one row per system; a row with several seeds shows mean ± std.

    ``rows`` pairs a row name with that system's metrics (one entry per seed). Every row must use
    the same class list.
    """
    if not rows:
        raise ValueError("metrics_table needs at least one row")
    class_names = rows[0][1][0].class_names
    header = ["Model", *class_names, "Macro F1"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for name, per_seed in rows:
        if any(m.class_names != class_names for m in per_seed):
            raise ValueError(f"row {name!r} uses classes {per_seed[0].class_names}, expected {class_names}")
        if len(per_seed) == 1:
            only = per_seed[0]
            cells = [format_score(f1) for f1 in only.f1] + [format_score(only.macro_f1)]
        else:
            cells = [format_mean_std([m.f1[i] for m in per_seed]) for i in range(len(class_names))]
            cells.append(format_mean_std([m.macro_f1 for m in per_seed]))
        lines.append("| " + " | ".join([name, *cells]) + " |")
    return "\n".join(lines) + "\n"


def aggregate_metrics(per_seed: Mapping[int, ClassificationMetrics]) -> dict[str, Any]:
    """Mean and sample standard deviation across seeds of every per-class F1 and of macro F1."""
    seeds = sorted(per_seed)
    first = per_seed[seeds[0]]
    aggregate: dict[str, Any] = {"seeds": seeds, "classes": list(first.class_names), "per_class_f1": {}}
    for i, name in enumerate(first.class_names):
        mean, std = mean_and_std([per_seed[s].f1[i] for s in seeds])
        aggregate["per_class_f1"][name] = {"mean": mean, "std": std}
    mean, std = mean_and_std([per_seed[s].macro_f1 for s in seeds])
    aggregate["macro_f1"] = {"mean": mean, "std": std}
    aggregate["absent_classes"] = sorted({c for s in seeds for c in per_seed[s].absent_classes})
    return aggregate


def absent_class_note(metrics: ClassificationMetrics) -> str:
    if not metrics.absent_classes:
        return ""
    return (
        f"\nClasses with no sample in this split (F1 reported as 0): {', '.join(metrics.absent_classes)}.\n"
    )


def save_confusion_matrix(metrics: ClassificationMetrics, path: str | os.PathLike, title: str = "") -> None:
    """Plot counts with row-normalised shading (each true class sums to 1) and save a PNG atomically."""
    confusion = np.asarray(metrics.confusion, dtype=np.float64)
    row_totals = confusion.sum(axis=1, keepdims=True)
    normalised = np.divide(confusion, row_totals, out=np.zeros_like(confusion), where=row_totals > 0)
    size = 1.2 + 0.9 * len(metrics.class_names)
    # A bare Figure renders with the Agg canvas and leaves pyplot's global state alone (headless-safe).
    figure = Figure(figsize=(size + 1.0, size))
    axes = figure.subplots()
    image = axes.imshow(normalised, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of true class")
    ticks = range(len(metrics.class_names))
    axes.set_xticks(ticks, metrics.class_names, rotation=30, ha="right")
    axes.set_yticks(ticks, metrics.class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for row in ticks:
        for column in ticks:
            colour = "white" if normalised[row, column] > 0.5 else "black"
            axes.text(column, row, str(int(confusion[row, column])), ha="center", va="center", color=colour)
    axes.set_title(title or f"Confusion matrix (macro F1 {format_score(metrics.macro_f1)})")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)


def save_training_curves(history: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Plot per-epoch training losses of both stages and validation macro F1; save a PNG atomically.

    ``history`` contains one entry per finished epoch: ``stage``, ``epoch``, ``train_loss`` and, for
    Backchannel Alignment, ``validation_macro_f1``.
    """
    figure = Figure(figsize=(10, 4))
    loss_axes, f1_axes = figure.subplots(1, 2)
    stages = list(dict.fromkeys(entry["stage"] for entry in history))
    offset = 0
    for stage in stages:
        entries = [e for e in history if e["stage"] == stage]
        title = STAGE_TITLES.get(stage, stage)
        x = [offset + e["epoch"] + 1 for e in entries]
        loss_axes.plot(x, [e["train_loss"] for e in entries], marker="o", label=f"{title} train loss")
        if any("validation_loss" in e for e in entries):
            loss_axes.plot(x, [e.get("validation_loss", np.nan) for e in entries], marker="x",
                           linestyle="--", label=f"{title} validation loss")
        scored = [e for e in entries if e.get("validation_macro_f1") is not None]
        if scored:
            f1_axes.plot([offset + e["epoch"] + 1 for e in scored],
                         [100 * e["validation_macro_f1"] for e in scored], marker="o", label=title)
        if offset:  # mark where the next stage starts
            for axes in (loss_axes, f1_axes):
                axes.axvline(offset + 0.5, color="grey", linestyle=":", linewidth=1)
        offset += len(entries)
    loss_axes.set_xlabel("epoch (stages in order)")
    loss_axes.set_ylabel("loss")
    f1_axes.set_xlabel("epoch (stages in order)")
    f1_axes.set_ylabel("validation macro F1 (%)")
    for axes in (loss_axes, f1_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)


def write_run_report(
    run_dir: str | os.PathLike,
    name: str,
    metrics: ClassificationMetrics,
    split: str,
    extra: Mapping[str, Any] | None = None,
    suffix: str = "",
) -> None:
    """Write metrics.json, report.md and confusion_matrix.png for one evaluated run.

    ``suffix`` (e.g. ``"_validation"``) is appended to the file stems so scores of another split
    sit beside the main ones instead of replacing them.
    """
    run_dir = Path(run_dir)
    payload = {"name": name, "split": split, **metrics.to_dict(), **(extra or {})}
    atomic_write_json(run_dir / f"metrics{suffix}.json", payload)
    lines = [f"# {name}\n", f"Split: {split}, {sum(metrics.support)} samples. F1 × 100.\n",
             metrics_table([(name, [metrics])]), absent_class_note(metrics)]
    if extra and extra.get("best_epoch") is not None:
        lines.append(f"\nBest Backchannel Alignment epoch: {extra['best_epoch'] + 1}.\n")
    atomic_write_text(run_dir / f"report{suffix}.md", "".join(lines))
    save_confusion_matrix(metrics, run_dir / f"confusion_matrix{suffix}.png", title=f"{name} ({split})")


def write_aggregate_report(
    output_dir: str | os.PathLike, name: str, per_seed: Mapping[int, ClassificationMetrics], split: str
) -> dict[str, Any]:
    """Write metrics.json and report.md with mean ± std over seeds into ``output_dir``."""
    output_dir = Path(output_dir)
    aggregate = {"name": name, "split": split, **aggregate_metrics(per_seed)}
    atomic_write_json(output_dir / "metrics.json", aggregate)
    seeds = sorted(per_seed)
    text = [
        f"# {name}\n",
        f"Split: {split}; mean ± sample standard deviation over seeds {seeds}. F1 × 100.\n",
        metrics_table([(name, [per_seed[s] for s in seeds])]),
        "\nPer seed:\n\n",
        metrics_table([(f"seed {s}", [per_seed[s]]) for s in seeds]),
    ]
    if aggregate["absent_classes"]:
        absent = ", ".join(aggregate["absent_classes"])
        text.append(f"\nClasses with no sample in the split of some seed (F1 0): {absent}.\n")
    atomic_write_text(output_dir / "report.md", "".join(text))
    return aggregate
