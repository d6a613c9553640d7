"""Judging a window: levels, not-enough-data, alert kinds, false alarms on identical data."""

from __future__ import annotations

import numpy as np
import pytest

from driftloop.config import MonitoringConfig
from driftloop.monitoring.assess import (
    AccuracyStats,
    accuracy_stats,
    assess_version,
    column_drift,
)
from driftloop.monitoring.sketch import BinnedSketch
from driftloop.statistics.profile import build_profile

CFG = MonitoringConfig(min_rows=500, min_labels=100)
RNG = np.random.default_rng(0)
REF = {f"x{i}": RNG.normal(size=20_000) for i in range(20)}
PROFILE = build_profile(REF, RNG.gamma(2.0, 10.0, 20_000), bins=10)


def sketches(columns: dict[str, np.ndarray]) -> dict[str, BinnedSketch]:
    out = {}
    for name, values in columns.items():
        s = BinnedSketch(PROFILE.features[name].edges)
        s.update(values)
        out[name] = s
    return out


def prediction_sketch(values: np.ndarray) -> BinnedSketch:
    s = BinnedSketch(PROFILE.prediction.edges)
    s.update(values)
    return s


def test_a_shifted_feature_reaches_act_and_the_rest_stay_quiet() -> None:
    rng = np.random.default_rng(1)
    current = {name: rng.normal(size=2000) for name in REF}
    current["x3"] = rng.normal(1.0, 1.0, 2000)
    preds = prediction_sketch(rng.gamma(2.0, 10.0, 2000))
    report = assess_version("1", PROFILE, sketches(current), preds, None, 0.3, CFG)
    levels = {f.name: f.level for f in report.features}
    assert levels.pop("x3") == "act"
    assert set(levels.values()) == {"none"}
    assert [(a.kind, a.subject, a.severity) for a in report.alerts] == [
        ("data_drift", "x3", "critical")
    ]


def test_a_small_window_is_not_enough_data_never_an_alarm() -> None:
    rng = np.random.default_rng(2)
    current = {name: rng.normal(5.0, 1.0, 100) for name in REF}  # wildly shifted, but tiny
    preds = prediction_sketch(rng.gamma(9.0, 10.0, 100))
    report = assess_version("1", PROFILE, sketches(current), preds, None, 0.3, CFG)
    assert not report.enough_data
    assert {f.level for f in report.features} == {"not enough data"}
    assert report.alerts == ()


def test_empty_and_all_nan_windows_are_defined() -> None:
    empty = column_drift(
        "x0", PROFILE.features["x0"], BinnedSketch(PROFILE.features["x0"].edges), CFG
    )
    assert empty.level == "not enough data" and empty.rows == 0
    nan_sketch = BinnedSketch(PROFILE.features["x0"].edges)
    nan_sketch.update(np.full(5000, np.nan))
    nans = column_drift("x0", PROFILE.features["x0"], nan_sketch, CFG)
    assert nans.level == "not enough data" and nans.missing == 5000


def test_values_never_seen_in_the_reference_land_in_the_open_outer_bins() -> None:
    s = BinnedSketch(PROFILE.features["x0"].edges)
    s.update(np.full(1000, 1e9))
    drift = column_drift("x0", PROFILE.features["x0"], s, CFG)
    assert drift.level == "act" and s.counts[-1] == 1000


def test_false_alarm_rate_on_identical_distributions() -> None:
    """400 windows x 20 features drawn like the reference: no warning-level alarm at all."""
    rng = np.random.default_rng(3)
    alarms = 0
    for _ in range(400):
        current = {name: rng.normal(size=CFG.min_rows) for name in REF}
        report = assess_version(
            "1",
            PROFILE,
            sketches(current),
            prediction_sketch(rng.gamma(2.0, 10.0, CFG.min_rows)),
            None,
            0.3,
            CFG,
        )
        alarms += len(report.alerts)
    assert alarms / (400 * 21) <= 0.001


def labeled(y: np.ndarray, p: np.ndarray) -> AccuracyStats:
    return accuracy_stats(y.tolist(), p.tolist())


def test_accuracy_that_falls_while_inputs_are_stable_is_concept_drift() -> None:
    rng = np.random.default_rng(4)
    current = {name: rng.normal(size=2000) for name in REF}
    y = rng.gamma(2.0, 10.0, 2000)
    preds = rng.gamma(2.0, 10.0, 2000)  # the relationship is gone: predictions unrelated
    report = assess_version(
        "1", PROFILE, sketches(current), prediction_sketch(preds), labeled(y, preds), 0.3, CFG
    )
    assert report.accuracy is not None and report.accuracy.state == "degraded"
    assert [a.kind for a in report.alerts] == ["concept_drift"]


def test_accuracy_with_drifted_inputs_is_accuracy_degradation() -> None:
    rng = np.random.default_rng(5)
    current = {name: rng.normal(2.0, 1.0, 2000) for name in REF}
    y = rng.gamma(2.0, 10.0, 2000)
    preds = y * 2.0
    report = assess_version(
        "1", PROFILE, sketches(current), prediction_sketch(preds), labeled(y, preds), 0.3, CFG
    )
    assert "accuracy_degradation" in {a.kind for a in report.alerts}
    assert "concept_drift" not in {a.kind for a in report.alerts}


def _state(n: int, factor: float) -> str:
    """The accuracy state of ``n`` labels predicted ``factor`` times their value (WAPE
    ``factor - 1``) against a holdout WAPE of 0.3."""
    y = np.full(n, 10.0)
    sketch = prediction_sketch(np.full(n, 10.0))  # every prediction labelled
    report = assess_version("1", PROFILE, {}, sketch, labeled(y, y * factor), 0.3, CFG)
    assert report.accuracy is not None
    return report.accuracy.state


def test_too_few_labels_never_judge_ok_nor_a_modest_degradation() -> None:
    assert _state(50, 1.1) == "not enough labels"  # ratio 0.33: "ok" needs min_labels (100)
    assert _state(50, 1.5) == "not enough labels"  # ratio 1.67 < 1.2 * (1 + 3 / sqrt(50))
    assert _state(100, 1.5) == "degraded"


def test_a_large_degradation_is_judged_on_a_quarter_of_the_labels() -> None:
    assert _state(50, 1.6) == "degraded"  # ratio 2.0 > 1.71 on 50 labels
    assert _state(24, 3.0) == "not enough labels"  # under a quarter of min_labels
    assert _state(25, 3.0) == "degraded"  # ratio 6.7 > 1.2 * (1 + 3 / 5) = 1.92


def _week(holiday_factor: float, usual_factor: float) -> tuple[AccuracyStats, list[AccuracyStats]]:
    """Seven days of 30 labels at 10, six predicted ``usual_factor`` times their value and
    the last ``holiday_factor`` times (a day the features cannot see coming)."""
    y = np.full(30, 10.0)
    days = [labeled(y, y * usual_factor) for _ in range(6)] + [labeled(y, y * holiday_factor)]
    total = days[0]
    for day in days[1:]:
        total = total + day
    return total, days


def _week_state(holiday_factor: float, usual_factor: float) -> tuple[str, float]:
    total, days = _week(holiday_factor, usual_factor)
    sketch = prediction_sketch(np.full(total.labeled, 10.0))
    report = assess_version("1", PROFILE, {}, sketch, total, 0.3, CFG, days=days)
    assert report.accuracy is not None
    return report.accuracy.state, report.accuracy.ratio


def test_one_bad_day_is_not_a_degraded_week_but_a_broad_rise_is() -> None:
    # Six days at the holdout's WAPE (0.3) and a holiday at 3.0: the week's WAPE is 0.69,
    # 2.3x the holdout, but its median day is 1.0x: not degraded.
    state, ratio = _week_state(4.0, 1.3)
    assert ratio == pytest.approx((6 * 0.3 + 3.0) / 7 / 0.3) and state == "ok"
    # Every day 1.5x worse (WAPE 0.45 against 0.3): degraded, as without the days.
    assert _week_state(1.45, 1.45)[0] == "degraded"
    total, _ = _week(4.0, 1.3)
    sketch = prediction_sketch(np.full(total.labeled, 10.0))
    pooled = assess_version("1", PROFILE, {}, sketch, total, 0.3, CFG)
    assert pooled.accuracy is not None and pooled.accuracy.state == "degraded"
    off = CFG.model_copy(update={"day_min_labels": 0})
    _, days = _week(4.0, 1.3)
    again = assess_version("1", PROFILE, {}, sketch, total, 0.3, off, days=days)
    assert again.accuracy is not None and again.accuracy.state == "degraded"


def test_accuracy_stats_worked_example_and_merge() -> None:
    a = accuracy_stats([10.0, 0.0], [12.0, 1.0])
    b = accuracy_stats([20.0], [15.0])
    total = a + b
    assert total.labeled == 3 and total.abs_error == pytest.approx(8.0)
    assert total.abs_label == pytest.approx(30.0) and total.error == pytest.approx(-2.0)
    assert total.ape_sum == pytest.approx(0.2 + 0.25) and total.ape_count == 2


def test_psi_levels_must_rise() -> None:
    with pytest.raises(ValueError, match="PSI levels must rise"):
        MonitoringConfig(psi_notice=0.3)


def test_classification_accuracy_is_log_loss_against_sklearn_and_catches_missed_positives() -> None:
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(6)
    y = (rng.random(3000) < 0.02).astype("float64")
    caught = np.where(y == 1, rng.uniform(0.3, 0.9, 3000), rng.uniform(0.0, 0.03, 3000))
    stats = accuracy_stats(y.tolist(), caught.tolist())
    assert stats.positives == int(y.sum())
    assert (stats.loss_pos + stats.loss_neg) / stats.labeled == pytest.approx(
        log_loss(y, caught), rel=1e-9
    )
    reference, rate = log_loss(y, caught), float(y.mean())
    same = assess_version(
        "1", PROFILE, {}, prediction_sketch(caught), stats, reference, CFG, "log_loss", rate
    )
    assert same.accuracy is not None and same.accuracy.ratio == pytest.approx(1.0)
    # a new kind of positive the model scores like the negatives
    missed = np.where(y == 1, rng.uniform(0.0, 0.03, 3000), caught)
    report = assess_version(
        "1",
        PROFILE,
        {},
        prediction_sketch(missed),
        accuracy_stats(y.tolist(), missed.tolist()),
        reference,
        CFG,
        "log_loss",
        rate,
    )
    acc = report.accuracy
    assert acc is not None and acc.metric == "log_loss" and acc.state == "degraded"
    assert acc.ratio > 3.0 and acc.error == pytest.approx(log_loss(y, missed), rel=1e-9)
    # WAPE of the probabilities moves far less on the same rows
    assert acc.wape / (np.abs(caught - y).sum() / y.sum()) < 2.0
    assert "log loss" in report.alerts[-1].message


def test_more_positives_with_the_same_model_quality_is_not_degradation() -> None:
    rng = np.random.default_rng(7)

    def window(rate: float) -> tuple[np.ndarray, np.ndarray]:
        y = (rng.random(4000) < rate).astype("float64")
        p = np.where(y == 1, rng.uniform(0.3, 0.9, 4000), rng.uniform(0.0, 0.03, 4000))
        return y, p

    y, p = window(0.02)
    from sklearn.metrics import log_loss

    reference, rate = log_loss(y, p), float(y.mean())
    busy_y, busy_p = window(0.08)  # four times the fraud, scored as well as before
    plain = log_loss(busy_y, busy_p)
    assert plain / reference > 2.0  # the plain mean would call it degraded
    report = assess_version(
        "1",
        PROFILE,
        {},
        prediction_sketch(busy_p),
        accuracy_stats(busy_y.tolist(), busy_p.tolist()),
        reference,
        CFG,
        "log_loss",
        rate,
    )
    assert report.accuracy is not None and report.accuracy.state == "ok"
    assert report.accuracy.ratio == pytest.approx(1.0, abs=0.15)
    few = accuracy_stats([1.0] * 5 + [0.0] * 995, [0.5] * 1000)  # 5 positives
    thin = assess_version(
        "1",
        PROFILE,
        {},
        prediction_sketch(np.full(1000, 0.5)),
        few,
        reference,
        CFG,
        "log_loss",
        rate,
    )
    assert thin.accuracy is not None and thin.accuracy.state == "not enough labels"
