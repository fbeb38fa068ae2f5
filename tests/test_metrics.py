"""Per-class F1 over the full label list, and the paired significance tests, on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from camabc_core.metrics import (
    PairedGroup,
    accuracy_score,
    classification_metrics,
    confusion_matrix,
    macro_f1_score,
    mean_and_std,
    paired_bootstrap_test,
    paired_randomization_test,
)


def group(y_true, pred_a, pred_b) -> PairedGroup:
    return PairedGroup(np.array(y_true), np.array(pred_a), np.array(pred_b))


def test_per_class_and_macro_f1_exact_case():
    # Class 0: TP 1, FP 1, FN 0 -> P 1/2, R 1, F1 2/3. Class 1: no TP -> 0. Class 2: perfect -> 1.
    metrics = classification_metrics([0, 1, 2, 2], [0, 0, 2, 2], ["a", "b", "c"])

    assert metrics.f1 == pytest.approx((2 / 3, 0.0, 1.0))
    assert round(metrics.f1[0], 3) == 0.667
    assert metrics.macro_f1 == pytest.approx(5 / 9)
    assert round(metrics.macro_f1, 3) == 0.556
    assert metrics.precision == pytest.approx((0.5, 0.0, 1.0))
    assert metrics.recall == pytest.approx((1.0, 0.0, 1.0))
    assert metrics.support == (1, 1, 2)
    assert metrics.accuracy == pytest.approx(0.75)
    assert metrics.absent_classes == ()


def test_absent_class_scores_zero_and_is_flagged():
    # Four classes, class 3 never occurs: it still counts in the average, 5/9 * 3/4 = 5/12.
    classes = ["NoBC", "Continuer", "Understanding", "Empathy"]
    metrics = classification_metrics([0, 1, 2, 2], [0, 0, 2, 2], classes)

    assert metrics.f1[3] == 0.0
    assert metrics.support[3] == 0
    assert metrics.absent_classes == ("Empathy",)
    assert metrics.macro_f1 == pytest.approx(5 / 12)
    assert metrics.to_dict()["absent_classes"] == ["Empathy"]


def test_confusion_matrix_counts_true_rows():
    matrix = confusion_matrix(np.array([0, 1, 2, 2]), np.array([0, 0, 2, 1]), 3)

    assert matrix.tolist() == [[1, 0, 0], [1, 0, 0], [0, 1, 1]]


def test_confusion_matrix_rejects_unknown_class_id():
    with pytest.raises(ValueError, match=r"outside \[0, 3\)"):
        confusion_matrix(np.array([0, 3]), np.array([0, 1]), 3)


def test_randomization_test_enumerates_small_cases_exactly():
    # A right on both samples (macro F1 1), B wrong on both (0). Of the four swap patterns, "none"
    # and "both" keep |difference| = 1; swapping one sample gives A = B = 1/3, difference 0.
    result = paired_randomization_test([group([0, 1], [0, 1], [1, 0])], num_classes=2)

    assert result.exact
    assert result.rounds == 4
    assert result.observed_difference == pytest.approx(1.0)
    assert result.p_value == pytest.approx(0.5)


def test_randomization_test_identical_systems():
    result = paired_randomization_test([group([0, 1, 1], [0, 1, 0], [0, 1, 0])], num_classes=2)

    assert result.observed_difference == 0.0
    assert result.p_value == 1.0


def test_randomization_test_samples_large_cases():
    # A is right on all 40 samples and B wrong on all of them: only two of 2**40 swap patterns reach
    # the observed difference, so almost no sampled pattern does and p is close to 1 / (rounds + 1).
    labels = np.tile([0, 1], 20)
    result = paired_randomization_test([group(labels, labels, 1 - labels)], num_classes=2, rounds=200, seed=3)

    assert not result.exact
    assert result.rounds == 200
    assert result.p_value == pytest.approx(1 / 201)


def test_randomization_test_averages_groups():
    # Group 1: difference 1 (as above); group 2: identical predictions, difference 0. Mean 0.5.
    groups = [group([0, 1], [0, 1], [1, 0]), group([0, 1], [0, 0], [0, 0])]
    result = paired_randomization_test(groups, num_classes=2)

    assert result.observed_difference == pytest.approx(0.5)
    assert result.p_value == pytest.approx(0.5)


def test_bootstrap_with_constant_difference():
    # With accuracy, A always right and B always wrong give a difference of exactly 1 in every
    # resample, so no centred resample reaches |d* - d| >= 1 and p = 1 / (rounds + 1).
    labels = np.array([0, 1, 0, 1, 1])
    result = paired_bootstrap_test([group(labels, labels, 1 - labels)], num_classes=2, metric=accuracy_score,
                                   rounds=50, seed=0)

    assert result.observed_difference == pytest.approx(1.0)
    assert result.p_value == pytest.approx(1 / 51)
    assert result.confidence_interval == pytest.approx((1.0, 1.0))


def test_bootstrap_identical_systems():
    labels = np.array([0, 1, 0, 1])
    result = paired_bootstrap_test([group(labels, labels, labels)], num_classes=2, rounds=20, seed=0)

    assert result.observed_difference == 0.0
    assert result.p_value == 1.0
    assert result.confidence_interval == (0.0, 0.0)


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 30)
    pred_a = np.where(rng.random(30) < 0.7, labels, rng.integers(0, 3, 30))
    pred_b = np.where(rng.random(30) < 0.5, labels, rng.integers(0, 3, 30))
    first = paired_bootstrap_test([group(labels, pred_a, pred_b)], num_classes=3, rounds=100, seed=7)
    second = paired_bootstrap_test([group(labels, pred_a, pred_b)], num_classes=3, rounds=100, seed=7)

    assert first == second
    assert first.observed_difference == pytest.approx(
        macro_f1_score(labels, pred_a, 3) - macro_f1_score(labels, pred_b, 3))


def test_paired_group_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="differ in length"):
        group([0, 1], [0, 1], [0])


def test_mean_and_sample_std():
    mean, std = mean_and_std([0.5, 0.7])

    assert mean == pytest.approx(0.6)
    assert std == pytest.approx(math.sqrt(0.02))
    assert mean_and_std([0.4]) == (0.4, 0.0)
