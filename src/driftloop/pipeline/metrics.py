"""Evaluation metrics: arrays in, a frozen result out.

Regression: WAPE, MAPE (over rows with a non-zero label), RMSE and relative bias.
Classification: ROC-AUC, PR-AUC (average precision) and log loss. WAPE, log loss and the
AUCs are those of :mod:`driftloop.statistics.accuracy`, as the monitor and rollout use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike

from driftloop.statistics.accuracy import log_loss, pr_auc, roc_auc, wape

__all__ = [
    "HIGHER_IS_BETTER",
    "MIN_HOLDOUT_ROWS",
    "ClassificationMetrics",
    "RegressionMetrics",
    "classification_metrics",
    "evaluate",
    "regression_metrics",
    "too_few_to_evaluate",
]

HIGHER_IS_BETTER = frozenset({"roc_auc", "pr_auc"})
MIN_HOLDOUT_ROWS = 10  # fewer labelled rows: a gate on them would judge noise


def too_few_to_evaluate(
    task: str, y_true: ArrayLike, min_rows: int = MIN_HOLDOUT_ROWS
) -> str | None:
    """Why the task's metrics cannot be judged on labels ``y_true``, or None when they can:
    fewer than ``min_rows`` rows, or (classification) a class missing, which leaves ROC
    AUC and log loss undefined."""
    y = np.asarray(y_true, dtype="float64").ravel()
    if y.size < min_rows:
        return f"{y.size} rows, fewer than {min_rows}"
    if task == "classification":
        positives = int((y == 1.0).sum())
        if positives == 0 or positives == y.size:
            only = "positive" if positives else "negative"
            return f"{y.size} rows, all {only}: ROC AUC and log loss need both classes"
    return None


@dataclass(frozen=True)
class RegressionMetrics:
    """Holdout metrics of a regression model."""

    wape: float  # sum |y - p| / sum |y|
    mape: float  # mean |y - p| / |y| over rows with y != 0
    rmse: float
    bias: float  # (sum p - sum y) / sum |y|: > 0 over-forecasts
    rows: int

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ClassificationMetrics:
    """Holdout metrics of a binary classifier (predictions are probabilities)."""

    roc_auc: float
    pr_auc: float
    log_loss: float
    positive_rate: float
    rows: int
    # sum |y - p| / sum y: the probabilities' absolute error per positive, the error the
    # monitor and the loop track over delayed labels for either task
    wape: float = float("nan")

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def _pair(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype="float64").ravel()
    p = np.asarray(y_pred, dtype="float64").ravel()
    if y.shape != p.shape:
        raise ValueError(f"labels and predictions differ in length: {y.size} vs {p.size}")
    if y.size == 0:
        raise ValueError("no rows to evaluate")
    if not (np.isfinite(y).all() and np.isfinite(p).all()):
        raise ValueError("labels and predictions must be finite")
    return y, p


def regression_metrics(y_true: ArrayLike, y_pred: ArrayLike) -> RegressionMetrics:
    """WAPE, MAPE, RMSE and bias of ``y_pred`` against ``y_true``."""
    y, p = _pair(y_true, y_pred)
    err = p - y
    total = float(np.abs(y).sum())
    nonzero = y != 0
    return RegressionMetrics(
        wape=wape(y, p),
        mape=float(np.mean(np.abs(err[nonzero]) / np.abs(y[nonzero]))) if nonzero.any() else 0.0,
        rmse=float(np.sqrt(np.mean(err**2))),
        bias=float(err.sum() / total) if total > 0 else 0.0,
        rows=int(y.size),
    )


def classification_metrics(y_true: ArrayLike, y_prob: ArrayLike) -> ClassificationMetrics:
    """ROC-AUC, PR-AUC and log loss of probabilities ``y_prob`` for 0/1 labels."""
    y, p = _pair(y_true, y_prob)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("classification labels must be 0 or 1")
    if np.unique(y).size < 2:
        raise ValueError("the holdout has only one class: AUC is undefined; widen the holdout")
    return ClassificationMetrics(
        roc_auc=roc_auc(y, p),
        pr_auc=pr_auc(y, p),
        log_loss=log_loss(y, p),
        positive_rate=float(y.mean()),
        rows=int(y.size),
        wape=wape(y, p),
    )


def evaluate(task: str, y_true: ArrayLike, y_pred: ArrayLike) -> dict[str, float]:
    """The task's metrics as a flat dict: regression or classification (probabilities)."""
    if task == "classification":
        return classification_metrics(y_true, y_pred).as_dict()
    return regression_metrics(y_true, y_pred).as_dict()
