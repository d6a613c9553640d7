"""Judging one window of one version against its reference profile (pure).

Counts in, a frozen report out. Decisions use effect sizes (PSI with the spec's levels,
KL for predictions, for accuracy the ratio of an error on delayed labels to its holdout
value: WAPE for regression, log loss for classification) and refuse to judge a window
smaller than the minimum: "not enough data" is a state, never an alarm. Alert kinds follow the
spec's Q5: data drift (inputs moved), prediction drift (outputs moved), concept drift
(accuracy fell while inputs look stable); accuracy that fell while inputs moved too is
reported as accuracy degradation next to the data drift that explains it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from driftloop.config import MonitoringConfig
from driftloop.monitoring.calendar import is_calendar_position
from driftloop.monitoring.calibration import calibrated_levels
from driftloop.monitoring.drift import js_divergence, kl_divergence, psi, psi_level
from driftloop.monitoring.sketch import BinnedSketch
from driftloop.statistics.accuracy import (
    class_losses,
    degraded_ratio_at,
    median_day_ratio,
    wape_of,
    wape_sums,
)
from driftloop.statistics.profile import ColumnProfile, ReferenceProfile

__all__ = [
    "ACCURACY_METRICS",
    "Accuracy",
    "AccuracyStats",
    "Alert",
    "ColumnDrift",
    "VersionAssessment",
    "accuracy_stats",
    "assess_version",
    "column_drift",
    "judged_features",
    "metric_label",
]

NAN = float("nan")
# The error accuracy is judged by, per task: WAPE of forecasts; log loss of probabilities
# (a missed fraud at p = 0.005 costs 5.3, a caught one at 0.5 costs 0.7, so a model that
# stops seeing a kind of positive shows at once, where the probabilities' absolute error
# moves little). The holdout value is registered as ``holdout_<metric>``. A window's log
# loss is taken at the holdout's positive rate (the mean loss on its positives and on its
# negatives, weighted as in the holdout): a week with more fraud is not a worse model.
ACCURACY_METRICS = {"regression": "wape", "classification": "log_loss"}
MIN_POSITIVES = 10  # labelled positives a window needs before its log loss is judged


@dataclass(frozen=True)
class ColumnDrift:
    """Drift of one column (a feature or the prediction) in a window."""

    name: str
    rows: int
    missing: int
    psi: float
    js: float
    kl: float
    level: str  # "none" | "notice" | "warning" | "act" | "not enough data"
    warning_at: float = NAN  # the PSI levels this column was judged by: the configured
    act_at: float = NAN  # ones, raised to its own variation when the profile is calibrated


@dataclass(frozen=True)
class AccuracyStats:
    """Mergeable sums over labeled predictions: add two windows by adding fields."""

    labeled: int = 0
    abs_error: float = 0.0
    abs_label: float = 0.0
    error: float = 0.0
    ape_sum: float = 0.0  # sum of |e| / |y| over labels != 0
    ape_count: int = 0
    positives: int = 0  # labels equal to 1 (classification)
    loss_pos: float = 0.0  # sum of -log p over labels 1, p clipped
    loss_neg: float = 0.0  # sum of -log(1 - p) over labels 0

    def __add__(self, other: AccuracyStats) -> AccuracyStats:
        return AccuracyStats(
            self.labeled + other.labeled,
            self.abs_error + other.abs_error,
            self.abs_label + other.abs_label,
            self.error + other.error,
            self.ape_sum + other.ape_sum,
            self.ape_count + other.ape_count,
            self.positives + other.positives,
            self.loss_pos + other.loss_pos,
            self.loss_neg + other.loss_neg,
        )


@dataclass(frozen=True)
class Accuracy:
    """Accuracy from delayed labels against the version's holdout accuracy."""

    labeled: int
    coverage: float
    wape: float
    mape: float
    bias: float
    reference: float  # the version's holdout value of ``metric``
    ratio: float  # error / reference
    state: str  # "ok" | "degraded" | "not enough labels"
    metric: str = "wape"  # what accuracy is judged by (ACCURACY_METRICS)
    error: float = NAN  # the window's value of ``metric``
    roc_auc: float = NAN  # classification: ROC AUC of the labelled predictions
    # WAPE: the median day's WAPE / reference, when a degraded-looking window was also
    # judged by its days (monitoring.day_min_labels); NaN when it was not.
    day_ratio: float = NAN


@dataclass(frozen=True)
class Alert:
    """Something a person (or the controller) should act on, with its evidence."""

    kind: str  # data_drift | prediction_drift | concept_drift | accuracy_degradation
    severity: str  # warning | critical
    subject: str
    value: float
    threshold: float
    message: str


@dataclass(frozen=True)
class VersionAssessment:
    """Everything judged about one version in one window."""

    version: str
    rows: int
    enough_data: bool
    features: tuple[ColumnDrift, ...]
    prediction: ColumnDrift
    accuracy: Accuracy | None
    alerts: tuple[Alert, ...]
    reason: str = ""  # why the window cannot judge drift or accuracy; "" when it can

    def worst_feature_level(self) -> str:
        order = ("not enough data", "none", "notice", "warning", "act")
        return max((f.level for f in self.features), key=order.index, default="none")


def column_drift(
    name: str, reference: ColumnProfile, current: BinnedSketch, cfg: MonitoringConfig
) -> ColumnDrift:
    """PSI, JS and KL of a window's counts against the reference counts, judged by the
    configured PSI levels raised to the column's own variation (a calibrated profile)."""
    finite = sum(current.counts)
    if finite < cfg.min_rows or sum(reference.counts) == 0:
        return ColumnDrift(name, finite, current.missing, NAN, NAN, NAN, "not enough data")
    notice, warning, act = calibrated_levels(
        cfg.psi_notice,
        cfg.psi_warning,
        cfg.psi_act,
        reference.calibration if cfg.calibrate_thresholds else None,
        cfg.calibration_sd,
    )
    value = psi(reference.counts, current.counts)
    level = psi_level(value, notice, warning, act)
    return ColumnDrift(
        name,
        finite,
        current.missing,
        value,
        js_divergence(current.counts, reference.counts),
        kl_divergence(current.counts, reference.counts),
        level,
        warning,
        act,
    )


def judged_features(profile: ReferenceProfile, cfg: MonitoringConfig) -> tuple[str, ...]:
    """The profile's features judged for drift: not in ``exclude_features`` and, with
    ``calendar_by_name``, not calendar positions (by name and the reference's range)."""
    return tuple(
        name
        for name, column in profile.features.items()
        if name not in cfg.exclude_features
        and not (
            cfg.calendar_by_name and is_calendar_position(name, column.minimum, column.maximum)
        )
    )


def metric_label(metric: str) -> str:
    """How a person reads the metric's name."""
    return {"wape": "WAPE", "log_loss": "log loss"}.get(metric, metric)


def _log_loss_at(stats: AccuracyStats, rate: float) -> float:
    """The window's log loss at positive rate ``rate`` (the window's own when unknown)."""
    negatives = stats.labeled - stats.positives
    if stats.positives == 0 or negatives == 0:
        return NAN
    if not (math.isfinite(rate) and 0.0 < rate < 1.0):
        rate = stats.positives / stats.labeled
    return rate * stats.loss_pos / stats.positives + (1.0 - rate) * stats.loss_neg / negatives


def _accuracy(
    stats: AccuracyStats,
    rows: int,
    reference: float,
    cfg: MonitoringConfig,
    metric: str,
    reference_rate: float = NAN,
    days: Sequence[AccuracyStats] = (),
) -> Accuracy:
    if metric not in ACCURACY_METRICS.values():
        raise ValueError(f"unknown accuracy metric {metric!r}: {sorted(ACCURACY_METRICS.values())}")
    coverage = stats.labeled / rows if rows else 0.0
    wape = wape_of(stats.abs_error, stats.abs_label)
    mape = stats.ape_sum / stats.ape_count if stats.ape_count else NAN
    bias = stats.error / stats.abs_label if stats.abs_label > 0 else NAN
    enough = stats.labeled >= cfg.min_labels and coverage >= cfg.min_label_coverage
    error = wape
    if metric == "log_loss":
        error = _log_loss_at(stats, reference_rate)
        enough = enough and stats.positives >= MIN_POSITIVES
    ratio = error / reference if reference > 0 and math.isfinite(error) else NAN
    # Fewer labels than min_labels judge a degradation large enough to show through their
    # noise (degraded_ratio_at), never an "ok".
    early = degraded_ratio_at(stats.labeled, cfg.accuracy_ratio, cfg.min_labels)
    covered = coverage >= cfg.min_label_coverage and (
        metric != "log_loss" or stats.positives >= MIN_POSITIVES
    )
    day_ratio = NAN
    if enough:
        state = "degraded" if ratio > cfg.accuracy_ratio else "ok"
        if state == "degraded" and metric == "wape" and cfg.day_min_labels > 0:
            # Broad or carried by a few days? (median_day_ratio: holidays are not decay.)
            judged = [d for d in days if d.labeled >= cfg.day_min_labels]
            day_ratio = median_day_ratio(
                [d.abs_error for d in judged], [d.abs_label for d in judged], reference
            )
            if day_ratio <= cfg.accuracy_ratio:
                state = "ok"
    elif covered and early is not None and ratio > early:
        state = "degraded"
    else:
        state = "not enough labels"
    return Accuracy(
        stats.labeled,
        coverage,
        wape,
        mape,
        bias,
        reference,
        ratio,
        state,
        metric,
        error,
        day_ratio=day_ratio,
    )


def assess_version(
    version: str,
    profile: ReferenceProfile,
    features: Mapping[str, BinnedSketch],
    prediction: BinnedSketch,
    accuracy: AccuracyStats | None,
    reference: float,
    cfg: MonitoringConfig,
    metric: str = "wape",
    reference_rate: float = NAN,
    days: Sequence[AccuracyStats] = (),
) -> VersionAssessment:
    """Judge one version's window: per-feature drift, prediction drift, accuracy, alerts.
    ``days``: the window's label sums day by day (a degradation carried by a few days is
    not one, ``monitoring.day_min_labels``)."""
    rows = prediction.total
    drifts = tuple(
        column_drift(name, profile.features[name], features[name], cfg)
        for name in judged_features(profile, cfg)
        if name in features
    )
    pred = column_drift("prediction", profile.prediction, prediction, cfg)
    acc = (
        _accuracy(accuracy, rows, reference, cfg, metric, reference_rate, days)
        if accuracy is not None
        else None
    )
    alerts = _alerts(drifts, pred, acc, cfg)
    return VersionAssessment(
        version,
        rows,
        rows >= cfg.min_rows,
        drifts,
        pred,
        acc,
        tuple(alerts),
        _reason(rows, acc, cfg),
    )


def _reason(rows: int, acc: Accuracy | None, cfg: MonitoringConfig) -> str:
    """Why a window cannot judge, for people; "" when it can."""
    reasons = []
    if rows < cfg.min_rows:
        reasons.append(f"not enough data: {rows} rows, monitoring.min_rows is {cfg.min_rows}")
    if acc is not None and acc.state == "not enough labels":
        need = f"{cfg.min_labels} and {cfg.min_label_coverage:.0%} coverage"
        if acc.metric == "log_loss":
            need += f" with {MIN_POSITIVES} positives"
        reasons.append(
            f"not enough labels: {acc.labeled} labelled ({acc.coverage:.0%} of the "
            f"rows), judging needs {need}"
        )
    return "; ".join(reasons)


def _level_at(f: ColumnDrift, cfg: MonitoringConfig) -> float:
    """The PSI level ``f`` reached (its own when calibrated, else the configured one)."""
    act = f.act_at if math.isfinite(f.act_at) else cfg.psi_act
    warning = f.warning_at if math.isfinite(f.warning_at) else cfg.psi_warning
    return act if f.level == "act" else warning


def _alerts(
    features: Sequence[ColumnDrift],
    pred: ColumnDrift,
    acc: Accuracy | None,
    cfg: MonitoringConfig,
) -> list[Alert]:
    alerts = []
    for f in features:
        if f.level in ("warning", "act"):
            severity = "critical" if f.level == "act" else "warning"
            threshold = _level_at(f, cfg)
            message = f"input {f.name} moved: PSI {f.psi:.3f} >= {threshold:g}"
            alerts.append(Alert("data_drift", severity, f.name, f.psi, threshold, message))
    if pred.level != "not enough data" and (pred.level == "act" or pred.kl >= cfg.prediction_kl):
        alerts.append(
            Alert(
                "prediction_drift",
                "critical" if pred.level == "act" else "warning",
                "prediction",
                pred.psi,
                cfg.psi_act,
                f"predictions moved: PSI {pred.psi:.3f}, KL(current||reference) {pred.kl:.3f}",
            )
        )
    if acc is not None and acc.state == "degraded":
        inputs_moved = any(f.level in ("warning", "act") for f in features)
        kind = "accuracy_degradation" if inputs_moved else "concept_drift"
        why = "inputs moved too" if inputs_moved else "inputs look stable: the relationship changed"
        alerts.append(
            Alert(
                kind,
                "critical",
                "accuracy",
                acc.ratio,
                cfg.accuracy_ratio,
                f"{metric_label(acc.metric)} {acc.error:.3f} is {acc.ratio:.2f}x the holdout's "
                f"{acc.reference:.3f} "
                f"on {acc.labeled} labels ({acc.coverage:.0%} coverage); {why}",
            )
        )
    return alerts


def accuracy_stats(labels: ArrayLike, predictions: ArrayLike) -> AccuracyStats:
    """The ``AccuracyStats`` sums of matched labels and predictions (vectorised)."""
    y = np.asarray(labels, dtype="float64")
    p = np.asarray(predictions, dtype="float64")
    e = p - y
    nonzero = y != 0
    positives, loss_pos, loss_neg = class_losses(y, p)
    abs_error, abs_label = wape_sums(y, p)
    return AccuracyStats(
        labeled=len(y),
        abs_error=abs_error,
        abs_label=abs_label,
        error=float(e.sum()),
        ape_sum=float((np.abs(e[nonzero]) / np.abs(y[nonzero])).sum()),
        ape_count=int(nonzero.sum()),
        positives=positives,
        loss_pos=loss_pos,
        loss_neg=loss_neg,
    )
