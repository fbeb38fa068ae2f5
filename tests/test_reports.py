"""Report files: the paper-style table, metrics.json, seed aggregates and the two figures."""

from __future__ import annotations

import json

import matplotlib.image
import pytest

from camabc_core.metrics import classification_metrics
from camabc_core.reports import (
    metrics_table,
    save_training_curves,
    write_aggregate_report,
    write_run_report,
)

FOUR_CLASSES = ["NoBC", "Continuer", "Understanding", "Empathy"]


def test_table_has_paper_columns_and_percentages():
    # Per-class F1 2/3, 0, 1, 0 -> 66.67 | 0.00 | 100.00 | 0.00; macro 5/12 -> 41.67.
    metrics = classification_metrics([0, 1, 2, 2], [0, 0, 2, 2], FOUR_CLASSES)
    table = metrics_table([("CAMA-BC", [metrics])]).splitlines()

    assert table[0] == "| Model | NoBC | Continuer | Understanding | Empathy | Macro F1 |"
    assert table[2] == "| CAMA-BC | 66.67 | 0.00 | 100.00 | 0.00 | 41.67 |"


def test_binary_table_columns():
    metrics = classification_metrics([0, 1, 1], [0, 1, 0], ["NoBC", "BC"])

    assert metrics_table([("run", [metrics])]).splitlines()[0] == "| Model | NoBC | BC | Macro F1 |"


def test_table_with_seeds_shows_mean_and_std():
    # NoBC F1 over two seeds: 1.0 and 2/3 -> mean 83.33, sample std (1/3)/sqrt(2) = 23.57.
    perfect = classification_metrics([0, 1], [0, 1], ["NoBC", "BC"])
    partial = classification_metrics([0, 1], [0, 0], ["NoBC", "BC"])
    row = metrics_table([("run", [perfect, partial])]).splitlines()[2]

    assert row.startswith("| run | 83.33 ± 23.57 | 50.00 ± 70.71 |")


def test_run_report_files(tmp_path):
    metrics = classification_metrics([0, 1, 2, 2], [0, 0, 2, 2], FOUR_CLASSES)
    write_run_report(tmp_path, "tiny", metrics, "test", extra={"seed": 3, "best_epoch": 1})

    payload = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert payload["per_class"]["NoBC"]["f1"] == pytest.approx(2 / 3)
    assert payload["absent_classes"] == ["Empathy"]
    assert payload["seed"] == 3
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| tiny | 66.67 | 0.00 | 100.00 | 0.00 | 41.67 |" in report
    assert "F1 reported as 0): Empathy" in report
    assert "Best Backchannel Alignment epoch: 2." in report
    image = matplotlib.image.imread(tmp_path / "confusion_matrix.png")
    assert image.ndim == 3
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary files


def test_report_for_other_split_keeps_main_files(tmp_path):
    metrics = classification_metrics([0, 1], [0, 1], ["NoBC", "BC"])
    write_run_report(tmp_path, "run", metrics, "test")
    write_run_report(tmp_path, "run", classification_metrics([0, 1], [1, 1], ["NoBC", "BC"]), "validation",
                     suffix="_validation")

    assert json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))["macro_f1"] == 1.0
    validation = json.loads((tmp_path / "metrics_validation.json").read_text(encoding="utf-8"))
    assert validation["split"] == "validation"
    assert (tmp_path / "confusion_matrix_validation.png").is_file()


def test_aggregate_report(tmp_path):
    per_seed = {
        0: classification_metrics([0, 1], [0, 1], ["NoBC", "BC"]),
        1: classification_metrics([0, 1], [0, 0], ["NoBC", "BC"]),
    }
    aggregate = write_aggregate_report(tmp_path, "run", per_seed, "test")

    # Macro F1: 1.0 and (2/3 + 0) / 2 = 1/3.
    assert aggregate["macro_f1"]["mean"] == pytest.approx(2 / 3)
    assert aggregate["macro_f1"]["std"] == pytest.approx((2 / 3) / 2**0.5)
    assert aggregate["per_class_f1"]["BC"]["mean"] == pytest.approx(0.5)
    saved = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert saved["seeds"] == [0, 1]
    report = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| seed 1 | 66.67 | 0.00 | 33.33 |" in report


def test_training_curves_png(tmp_path):
    history = [
        {"stage": "context_alignment", "epoch": 0, "train_loss": 25.1},
        {"stage": "context_alignment", "epoch": 1, "train_loss": 24.0},
        {"stage": "backchannel_alignment", "epoch": 0, "train_loss": 3.8, "validation_loss": 1.2,
         "validation_macro_f1": 0.25},
        {"stage": "backchannel_alignment", "epoch": 1, "train_loss": 3.5, "validation_loss": 1.0,
         "validation_macro_f1": 0.31},
    ]
    save_training_curves(history, tmp_path / "curves.png")

    image = matplotlib.image.imread(tmp_path / "curves.png")
    assert image.shape[1] > image.shape[0]  # two panels side by side
