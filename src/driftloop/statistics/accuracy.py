"""Accuracy metrics: WAPE, log loss and ROC AUC, one definition each (pure).

The training holdout, the monitor, the rollout's labelled evidence and the replay all
compute them here. One convention for missing labels: a metric with nothing to judge
(no label mass, no labels, one class only) is NaN. Rows whose label is NaN are skipped
where a function says so. Records written as JSON turn NaN into null with :func:`or_none`.
Log loss clips probabilities to ``[LOSS_CLIP, 1 - LOSS_CLIP]`` everywhere, so a window's
loss and the holdout's loss it is divided by are measured alike.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "LOSS_CLIP",
    "class_losses",
    "degraded_ratio_at",
    "log_loss",
    "log_loss_sum",
    "median_day_ratio",
    "or_none",
    "pr_auc",
    "roc_auc",
    "roc_auc_from_counts",
    "row_log_loss",
    "wape",
    "wape_of",
    "wape_sums",
]

LOSS_CLIP = 1e-6


def or_none(value: float) -> float | None:
    """``value``, or None where it is NaN (JSON has no NaN)."""
    return None if math.isnan(value) else value


def wape_of(abs_error: float, abs_label: float) -> float:
    """WAPE from its two sums, sum |y - p| / sum |y|; NaN without label mass."""
    return abs_error / abs_label if abs_label > 0 else math.nan


def wape_sums(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[float, float]:
    """WAPE's two sums over the rows given, sum |y - p| and sum |y|, to add up across
    windows before :func:`wape_of`."""
    y = np.asarray(y_true, dtype="float64")
    p = np.asarray(y_pred, dtype="float64")
    return float(np.abs(p - y).sum()), float(np.abs(y).sum())


def wape(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """WAPE over the rows with a label (NaN labels skipped); NaN without label mass."""
    y = np.asarray(y_true, dtype="float64")
    p = np.asarray(y_pred, dtype="float64")
    ok = np.isfinite(y)
    return wape_of(*wape_sums(y[ok], p[ok]))


def row_log_loss(y_true: ArrayLike, y_prob: ArrayLike) -> np.ndarray:
    """Per-row log loss of probabilities (clipped) for 0/1 labels."""
    y = np.asarray(y_true, dtype="float64")
    q = np.clip(np.asarray(y_prob, dtype="float64"), LOSS_CLIP, 1.0 - LOSS_CLIP)
    return np.asarray(-(y * np.log(q) + (1.0 - y) * np.log(1.0 - q)), dtype=np.float64)


def class_losses(y_true: ArrayLike, y_prob: ArrayLike) -> tuple[int, float, float]:
    """Positives, and the log loss summed over the positives and over the negatives
    (labels other than 0 and 1 count for neither)."""
    y = np.asarray(y_true, dtype="float64")
    q = np.clip(np.asarray(y_prob, dtype="float64"), LOSS_CLIP, 1.0 - LOSS_CLIP)
    positive, negative = y == 1.0, y == 0.0
    return (
        int(positive.sum()),
        float(-np.log(q[positive]).sum()),
        float(-np.log(1.0 - q[negative]).sum()),
    )


def log_loss_sum(y_true: ArrayLike, y_prob: ArrayLike) -> float:
    """Log loss summed over the rows; labels not 0 or 1 count 0."""
    _, pos, neg = class_losses(y_true, y_prob)
    return pos + neg


def log_loss(y_true: ArrayLike, y_prob: ArrayLike) -> float:
    """Mean log loss over the rows with a label (NaN labels skipped); NaN without labels."""
    y = np.asarray(y_true, dtype="float64")
    p = np.asarray(y_prob, dtype="float64")
    ok = np.isfinite(y)
    n = int(ok.sum())
    return log_loss_sum(y[ok], p[ok]) / n if n else math.nan


def _both_classes(y_true: ArrayLike, y_score: ArrayLike) -> tuple[np.ndarray, np.ndarray] | None:
    """The labelled rows (NaN labels skipped), or None without both classes."""
    y = np.asarray(y_true, dtype="float64")
    s = np.asarray(y_score, dtype="float64")
    ok = np.isfinite(y)
    return (y[ok], s[ok]) if np.unique(y[ok]).size == 2 else None


def roc_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """ROC AUC of scores for 0/1 labels (NaN labels skipped); NaN without both classes."""
    from sklearn.metrics import roc_auc_score

    rows = _both_classes(y_true, y_score)
    return math.nan if rows is None else float(roc_auc_score(*rows))


def pr_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """PR AUC (average precision) of scores for 0/1 labels (NaN labels skipped); NaN
    without both classes."""
    from sklearn.metrics import average_precision_score

    rows = _both_classes(y_true, y_score)
    return math.nan if rows is None else float(average_precision_score(*rows))


def roc_auc_from_counts(positives: ArrayLike, negatives: ArrayLike) -> float:
    """ROC AUC from per-bin counts of positives and negatives (bins in score order);
    pairs in one bin count one half. NaN without both classes."""
    pos = np.asarray(positives, dtype="float64")
    neg = np.asarray(negatives, dtype="float64")
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return math.nan
    below = np.cumsum(neg) - neg  # negatives in lower bins
    return float((pos * (below + 0.5 * neg)).sum() / (n_pos * n_neg))


EARLY_Z = 3.0  # standard errors a ratio must clear to be judged on fewer labels than asked


def degraded_ratio_at(labeled: int, threshold: float, min_labels: int) -> float | None:
    """The error ratio (window / holdout) above which ``labeled`` labels show a version
    degraded, for a rule that asks ``min_labels`` labels to judge at ``threshold``.

    From ``min_labels`` labels on: ``threshold``. Below it, a window's error is a mean of
    per-label errors whose spread is about their mean (a coefficient of variation of 1,
    above a normal error's 0.76), so its relative standard error is about 1/sqrt(n): the
    ratio must clear ``threshold`` by ``EARLY_Z`` of them, ``threshold * (1 + 3/sqrt(n))``
    (2.8x on 5 labels at threshold 1.2, 2.0x on 19). Fewer than a quarter of
    ``min_labels`` (at least 3): None, not judged. Only a degradation is judged early: a
    version is called fine on ``min_labels`` labels only."""
    if labeled < 0 or min_labels < 1 or not threshold > 0:
        raise ValueError(
            f"labeled {labeled!r} must be >= 0, min_labels {min_labels!r} >= 1 and "
            f"threshold {threshold!r} > 0"
        )
    if labeled >= min_labels:
        return threshold
    if labeled < max(min_labels // 4, 3):
        return None
    return threshold * (1.0 + EARLY_Z / math.sqrt(labeled))


MIN_JUDGED_DAYS = 5  # days a median of daily errors needs before it is asked


def median_day_ratio(
    abs_errors: ArrayLike, abs_labels: ArrayLike, reference: float, min_days: int = MIN_JUDGED_DAYS
) -> float:
    """The median over days of each day's WAPE divided by ``reference``.

    A window's WAPE pools its days, so one day far off the model's usual error (a
    holiday its features cannot see, a store closed, a storm) can lift the whole week
    past an alarm threshold while every other day is as good as ever. The median day
    says whether the error is broad: a changed world lifts most days. ``abs_errors`` and
    ``abs_labels`` hold each day's two WAPE sums; days without label mass are skipped.
    NaN with fewer than ``min_days`` judged days or no positive finite ``reference``."""
    e = np.asarray(abs_errors, dtype="float64")
    y = np.asarray(abs_labels, dtype="float64")
    if e.shape != y.shape:
        raise ValueError(f"abs_errors {e.shape} and abs_labels {y.shape} differ in shape")
    if not (math.isfinite(reference) and reference > 0):
        return math.nan
    ok = (y > 0) & np.isfinite(e)
    if int(ok.sum()) < max(min_days, 1):
        return math.nan
    return float(np.median(e[ok] / y[ok]) / reference)
