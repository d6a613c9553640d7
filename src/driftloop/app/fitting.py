"""The settings ``driftloop init`` fits to a table: its quality gate, its rollout's pace,
its training and monitoring windows (pure functions of the table's schema and pace)."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

from driftloop.features.table import CALENDAR_FEATURES

if TYPE_CHECKING:
    from driftloop.tabular.infer import TableSchema

__all__ = [
    "SPARSE_MIN_GAIN",
    "WEEKLY_CHALLENGER_DAYS",
    "is_counts",
    "loop_settings",
    "rollout_settings",
    "table_gate",
    "table_settings",
    "target_range",
]

# A daily table too sparse for a week to be judged for drift gets a challenger this often.
WEEKLY_CHALLENGER_DAYS = 7.0
# ... and any of its retrains, drift or scheduled, must beat the champion by this at the
# gate: with one due every week, one that only ties the champion is not worth deploying.
SPARSE_MIN_GAIN = 0.02


def _clamp(value: float, low: int, high: int) -> int:
    return int(max(low, min(high, round(value))))


def table_gate(task: str, target_range: tuple[float, float] | None) -> dict[str, Any]:
    """The quality gate init can justify from the table: against the champion only, plus
    sanity bounds the target's own range supports. No absolute metric or bias bound (a
    growing series is biased on its holdout; a logarithm's mean may be near zero); the
    smallest plausible prediction is a full range below the smallest target seen (a log
    target is often negative; a least-squares model goes a little below zero targets)."""
    if task == "classification":
        return {
            "metric": "roc_auc",
            "max_metric": None,
            "min_metric": None,
            "max_abs_bias": None,
            "min_prediction": 0.0,
        }
    floor = None
    if target_range is not None:
        low, high = target_range
        floor = float(f"{low - max(high - low, abs(low), 1.0):.4g}")
    return {"metric": "wape", "max_metric": None, "max_abs_bias": None, "min_prediction": floor}


def rollout_settings(per_day: float, label_delay_days: int) -> dict[str, Any]:
    """The rollout section fitted to a pace of ``per_day`` predictions.

    The first step (10 %) needs about three days of canary traffic (of the whole traffic
    when the slice is too sparse and shadow answers count) and, for the outcome
    gates, the labels of five; its deadline is three times what the slower of the two
    takes at this pace. The spec's 2,000 requests a step in 30 minutes need a busy online
    service; a retail chain of 10 stores asking 12 times a day gives a 10 % canary 12."""
    canary_per_day = max(per_day * 0.1, 0.1)
    min_requests = _clamp(canary_per_day * 3, 10, 2000)
    min_outcomes = _clamp(canary_per_day * 5, 20, 200)
    days_needed = max(min_requests, min_outcomes) / canary_per_day + label_delay_days
    max_days = _clamp(3 * days_needed, 3, 60)
    # A slice too sparse to reach min_requests by the deadline (one event a day: a canary
    # request every ten days) is judged on the challenger's answers to every request, its
    # own slice's and those it computes in shadow on the champion's (rollout.paired).
    sparse = canary_per_day * max_days < min_requests
    if sparse:
        # Counted this way the challenger answers every request, so three days of the whole
        # pace make a step (at least 3 answers: a challenger that fails outright fails all
        # three). Waiting for 10 at one event a day kept each new model 20 days from full
        # traffic (Puerto Rico's deaths); the step's real evidence is the gate's holdout.
        min_requests = _clamp(per_day * 3, 3, min_requests)
    # Counted this way, every step judges the same evidence (the challenger's answers to
    # the whole traffic): a second judged step only repeats the first, and a week of
    # rollout (10 %, 50 %, then 100 % at three days a step) cost Puerto Rico's loop a
    # third of its gap to a weekly schedule. One judged step, then full traffic.
    steps = {"steps": [10.0, 100.0]} if sparse else {}
    return {
        **steps,
        "min_requests": min_requests,
        "guard_min_requests": min_requests,
        "min_duration_s": 12 * 3600.0,
        "max_duration_s": float(max_days * 86400),
        "check_interval_s": 4 * 3600.0,
        "p99_slack_ms": 25.0,
        "outcomes": {"min_outcomes": min_outcomes},
        **({"paired": {"count_shadow": True}} if sparse else {}),
    }


def table_settings(
    schema: TableSchema, counts: bool = False, target_range: tuple[float, float] | None = None
) -> dict[str, Any]:
    """Config sections fitted to a user's table: its task, its pace of events, its span.

    ``counts``: the target is a non-negative whole number (Poisson loss fits it).
    ``target_range``: its smallest and largest value (the gate's sanity floor)."""
    span_days = max((schema.last - schema.first).days, 1)
    per_day = schema.rows / span_days
    per_week = per_day * 7
    task = schema.task
    counts = counts and task == "regression"
    objective = "binary" if task == "classification" else "poisson" if counts else "regression"
    gate = table_gate(task, target_range)
    holdout = _clamp(span_days * 0.05, 7, 28)
    window_days = _clamp(span_days * 0.5, 60, 365)
    min_rows = _clamp(per_week * 0.5, 30, 500)
    return {
        "labels": {"delay_days": max(1, math.ceil(schema.label_delay / timedelta(days=1)))},
        "features": {"ttl_days": 3650},
        "training": {
            "task": task,
            "window_days": window_days,
            "validation_days": holdout,
            "holdout_days": holdout,
            "min_train_rows": _clamp(per_day * 20, 50, 500),
            "model": {
                "type": "lightgbm",
                "params": {
                    "objective": objective,
                    "learning_rate": 0.05,
                    "num_leaves": 31,
                    "min_data_in_leaf": _clamp(per_day, 10, 40),
                    "feature_fraction": 0.9,
                    "lambda_l2": 1.0,
                },
            },
            "gate": gate,
        },
        "monitoring": {
            # A classifier's log loss rests on the few positives of a window (tens of
            # fraud a week in the fraud example): two weeks of them, and a rise of 50 %
            # (a 20 % rise is within a week's noise; the fraud replay's pre-shift weeks
            # reached 1.5x).
            **({"accuracy_ratio": 1.5, "window_days": 14} if task == "classification" else {}),
            "min_rows": min_rows,
            "min_labels": _clamp(per_week * 0.3, 20, 200),
            # driftloop's calendar features and the table's own calendar positions
            "exclude_features": list(dict.fromkeys([*CALENDAR_FEATURES, *schema.calendar])),
        },
        "rollout": rollout_settings(per_day, schema.label_delay.days),
        "loop": loop_settings(per_week, min_rows, schema.spacing),
    }


def loop_settings(per_week: float, min_rows: int, spacing: timedelta) -> dict[str, Any]:
    """The loop section fitted to the table's pace: when a week of events holds fewer than
    ``monitoring.min_rows`` (``min_rows``), drift cannot judge a week, and the scheduled
    challenger is what keeps the model fresh: every week, if the entities have an event at
    least daily (``spacing``, the median gap; a monthly table gains no rows in a week).
    Such a retrain learns a few hundred rows in seconds; the gate's
    ``challenger_min_gain`` and the canary decide what is deployed. Else the default.

    On Puerto Rico's daily deaths (7 rows a week, 30 to judge), offline, weekly
    challengers deployed when they beat the champion by 2 % on the 10-row holdout were as
    accurate as the weekly schedule (27 deployments against its 105); the loop's
    drift-triggered retrains, with the same models, stayed 5 % behind it. The paired test
    over days (``deploy_significance``) is off there: its units are days, and 7-10 rows
    on 7-10 days cannot tell a real gain from luck (offline, a t-test even at p < 0.2
    deployed 16 times at WAPE 0.1047, against the gain rule's 0.1031)."""
    if per_week >= min_rows or spacing > timedelta(days=1):
        return {}
    gain = SPARSE_MIN_GAIN
    return {
        "challenger_every_days": WEEKLY_CHALLENGER_DAYS,
        "challenger_min_gain": gain,
        "drift_min_gain": gain,
        "deploy_significance": None,
    }


def target_range(values: pd.Series) -> tuple[float, float]:
    """The smallest and largest value of the target."""
    v = values.to_numpy("float64")
    return float(v.min()), float(v.max())


def is_counts(values: pd.Series) -> bool:
    """Whether the target is a non-negative whole number (a count)."""
    v = values.to_numpy("float64")
    return bool(len(v) and (v >= 0).all() and (v == v.round()).all())
