"""Classification metrics over a fixed label list, and paired significance tests between two systems.

Every score is computed over the label scheme's full class list. A class that never occurs in a
split therefore still counts in the macro average (with F1 0) and is flagged, instead of silently
shrinking the average to the classes that happen to be present.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs
import numpy as np

#: A statistic of one system's predictions: (y_true, y_pred, num_classes) -> float.
Metric = Callable[[np.ndarray, np.ndarray, int], float]


@attrs.frozen
class ClassificationMetrics:
    """Scores of one set of predictions; lists are indexed by class id."""

    class_names: tuple[str, ...]
    precision: tuple[float, ...]
    recall: tuple[float, ...]
    f1: tuple[float, ...]
    #: Number of true samples of each class.
    support: tuple[int, ...]
    macro_f1: float
    accuracy: float
    #: confusion[i][j] counts samples of true class i predicted as class j.
    confusion: tuple[tuple[int, ...], ...]

    @property
    def absent_classes(self) -> tuple[str, ...]:
        """Classes with no true sample in this split; their F1 is reported as 0."""
        return tuple(name for name, count in zip(self.class_names, self.support) if count == 0)

    def to_dict(self) -> dict:
        return {
            "classes": list(self.class_names),
            "per_class": {
                name: {
                    "precision": self.precision[i],
                    "recall": self.recall[i],
                    "f1": self.f1[i],
                    "support": self.support[i],
                }
                for i, name in enumerate(self.class_names)
            },
            "macro_f1": self.macro_f1,
            "accuracy": self.accuracy,
            "absent_classes": list(self.absent_classes),
            "confusion_matrix": [list(row) for row in self.confusion],
        }


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Count (true, predicted) pairs into a (C, C) integer matrix; raise on ids outside [0, C)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"{name} contains class ids outside [0, {num_classes}): min {values.min()}, "
                f"max {values.max()}; check that the label scheme matches the model"
            )
    counts = np.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def _f1_from_confusion(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class precision, recall and F1; a zero denominator gives 0 rather than NaN."""
    true_positive = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(axis=0).astype(np.float64)
    actual = confusion.sum(axis=1).astype(np.float64)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, actual, out=np.zeros_like(true_positive), where=actual > 0)
    # F1 = 2 TP / (2 TP + FP + FN) equals the harmonic mean of precision and recall and needs one guard.
    denominator = predicted + actual
    f1 = np.divide(2 * true_positive, denominator, out=np.zeros_like(true_positive), where=denominator > 0)
    return precision, recall, f1


def macro_f1_score(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Unweighted mean of per-class F1 over all ``num_classes`` classes, present or not."""
    _, _, f1 = _f1_from_confusion(confusion_matrix(y_true, y_pred, num_classes))
    return float(f1.mean())


def accuracy_score(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> float:
    """Fraction of exact matches (``num_classes`` is unused; it keeps the Metric signature)."""
    y_true = np.asarray(y_true)
    return float((y_true == np.asarray(y_pred)).mean()) if y_true.size else 0.0


def classification_metrics(
    y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, class_names: Sequence[str]
) -> ClassificationMetrics:
    """Compute per-class precision, recall, F1, support, macro F1, accuracy and the confusion matrix."""
    num_classes = len(class_names)
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    confusion = confusion_matrix(y_true, y_pred, num_classes)
    precision, recall, f1 = _f1_from_confusion(confusion)
    return ClassificationMetrics(
        class_names=tuple(class_names),
        precision=tuple(float(x) for x in precision),
        recall=tuple(float(x) for x in recall),
        f1=tuple(float(x) for x in f1),
        support=tuple(int(x) for x in confusion.sum(axis=1)),
        macro_f1=float(f1.mean()),
        accuracy=accuracy_score(y_true, y_pred, num_classes),
        confusion=tuple(tuple(int(x) for x in row) for row in confusion),
    )


# --- paired significance tests ----------------------------------------------------------------------


@attrs.frozen
class PairedGroup:
    """Predictions of systems A and B on the same samples (one seed, one split), in the same order."""

    y_true: np.ndarray
    pred_a: np.ndarray
    pred_b: np.ndarray

    def __attrs_post_init__(self) -> None:
        shapes = {self.y_true.shape, self.pred_a.shape, self.pred_b.shape}
        if len(shapes) != 1:
            raise ValueError(
                f"paired predictions differ in length: y_true {self.y_true.shape}, "
                f"A {self.pred_a.shape}, B {self.pred_b.shape}; both runs must score the same samples"
            )


@attrs.frozen
class SignificanceResult:
    method: str
    #: Mean over groups of metric(A) - metric(B).
    observed_difference: float
    p_value: float
    rounds: int
    #: True when the randomisation test enumerated every swap pattern instead of sampling them.
    exact: bool = False
    #: 95% interval of the difference (bootstrap only).
    confidence_interval: tuple[float, float] | None = None

    def to_dict(self) -> dict:
        return attrs.asdict(self)


def _mean_difference(groups: Sequence[PairedGroup], preds_a, preds_b, num_classes: int, metric: Metric):
    return float(
        np.mean([
            metric(group.y_true, a, num_classes) - metric(group.y_true, b, num_classes)
            for group, a, b in zip(groups, preds_a, preds_b)
        ])
    )


def paired_randomization_test(
    groups: Sequence[PairedGroup],
    num_classes: int,
    *,
    metric: Metric = macro_f1_score,
    rounds: int = 10_000,
    seed: int = 0,
) -> SignificanceResult:
    """Two-sided approximate randomisation test of metric(A) - metric(B).

    Under the null hypothesis the two systems are exchangeable, so each sample's pair of predictions
    is swapped with probability 1/2. The p-value is the share of swap patterns whose absolute
    difference reaches the observed one. Only samples where A and B disagree change anything under a
    swap. When those number at most log2(rounds) in total, every pattern is enumerated and the
    p-value is exact. Otherwise ``rounds`` patterns are sampled and p = (hits + 1) / (rounds + 1).
    """
    observed = _mean_difference(groups, [g.pred_a for g in groups], [g.pred_b for g in groups],
                                num_classes, metric)
    differing = [np.flatnonzero(g.pred_a != g.pred_b) for g in groups]
    total_differing = sum(len(d) for d in differing)
    exact = 2**total_differing <= rounds

    def difference_for(swap_masks: list[np.ndarray]) -> float:
        preds_a, preds_b = [], []
        for group, positions, mask in zip(groups, differing, swap_masks):
            a, b = group.pred_a.copy(), group.pred_b.copy()
            swapped = positions[mask]
            a[swapped], b[swapped] = group.pred_b[swapped], group.pred_a[swapped]
            preds_a.append(a)
            preds_b.append(b)
        return _mean_difference(groups, preds_a, preds_b, num_classes, metric)

    # A small tolerance keeps ties (the identity pattern itself) counted despite float rounding.
    tolerance = 1e-12
    if exact:
        hits = 0
        patterns = 2**total_differing
        for pattern in range(patterns):
            bits = np.array([(pattern >> i) & 1 for i in range(total_differing)], dtype=bool)
            masks, offset = [], 0
            for positions in differing:
                masks.append(bits[offset: offset + len(positions)])
                offset += len(positions)
            hits += abs(difference_for(masks)) >= abs(observed) - tolerance
        return SignificanceResult("randomization", observed, hits / patterns, patterns, exact=True)

    generator = np.random.default_rng(seed)
    hits = 0
    for _ in range(rounds):
        masks = [generator.random(len(positions)) < 0.5 for positions in differing]
        hits += abs(difference_for(masks)) >= abs(observed) - tolerance
    return SignificanceResult("randomization", observed, (hits + 1) / (rounds + 1), rounds)


def paired_bootstrap_test(
    groups: Sequence[PairedGroup],
    num_classes: int,
    *,
    metric: Metric = macro_f1_score,
    rounds: int = 1_000,
    seed: int = 0,
) -> SignificanceResult:
    """Two-sided paired bootstrap test of metric(A) - metric(B), with a 95% percentile interval.

    Each round resamples the samples of every group with replacement (the same indices for A and
    B). The bootstrap differences are centred on the observed one to approximate the null
    distribution, so p = (1 + #{|d* - d| >= |d|}) / (rounds + 1).
    """
    observed = _mean_difference(groups, [g.pred_a for g in groups], [g.pred_b for g in groups],
                                num_classes, metric)
    generator = np.random.default_rng(seed)
    differences = np.empty(rounds)
    for round_index in range(rounds):
        per_group = []
        for group in groups:
            indices = generator.integers(0, len(group.y_true), size=len(group.y_true))
            y_true = group.y_true[indices]
            per_group.append(
                metric(y_true, group.pred_a[indices], num_classes)
                - metric(y_true, group.pred_b[indices], num_classes)
            )
        differences[round_index] = np.mean(per_group)
    hits = int(np.sum(np.abs(differences - observed) >= abs(observed) - 1e-12))
    low, high = np.percentile(differences, [2.5, 97.5])
    return SignificanceResult(
        "bootstrap",
        observed,
        (hits + 1) / (rounds + 1),
        rounds,
        confidence_interval=(float(low), float(high)),
    )


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) across seeds."""
    array = np.asarray(values, dtype=np.float64)
    std = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return float(array.mean()), std
