"""The loop's policy as a table: signals of recent checks in, one decision out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import partial

import pytest

from driftloop.config import LoopConfig
from driftloop.loop.challenger import SCHEDULED, retrain_weight, scheduled_challenger
from driftloop.loop.policy import (
    Decision,
    Signals,
    accuracy_lag_days,
    decide,
    fired,
)

DAY0 = date(2020, 3, 1)


def check(day: int, **kw: object) -> Signals:
    """A check at the end of DAY0 + day over the 7 days before it."""
    end = DAY0 + timedelta(days=day + 1)
    base = Signals(
        at=datetime.combine(end, datetime.min.time(), tzinfo=UTC) - timedelta(seconds=1),
        champion="1",
        window=(end - timedelta(days=7), end),
        rows=5000,
        enough_data=True,
        drifted_features=(),
        max_feature_psi=0.05,
        prediction_drift=False,
        prediction_kl=0.01,
        accuracy_state="ok",
        accuracy_ratio=1.0,
        label_coverage=0.85,
        wape=0.35,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


HEALTHY = {}
DRIFT = {"drifted_features": ("units_lag_7", "units_mean_28d"), "max_feature_psi": 0.4}
ONE_FEATURE = {"drifted_features": ("units_lag_7",), "max_feature_psi": 0.4}
DEGRADED = {"accuracy_state": "degraded", "accuracy_ratio": 1.4, "wape": 0.49}
PRED = {"prediction_drift": True, "prediction_kl": 0.2}
THIN = {"enough_data": False, "rows": 100, "accuracy_state": "not enough labels", "wape": None}


def history(*specs: dict[str, object], start: int = 0) -> list[Signals]:
    return [check(start + i, **spec) for i, spec in enumerate(specs)]


def at(day: int) -> datetime:
    return check(day).at


CFG = LoopConfig()


@pytest.mark.parametrize(
    ("checks", "retrains", "kwargs", "action", "reason"),
    [
        # nothing wrong
        ([HEALTHY] * 10, [], {}, "none", "healthy"),
        # too little data is never an alarm
        ([THIN, THIN], [], {}, "none", "not enough data"),
        # drift must persist for sustained_checks (2)
        ([HEALTHY, DRIFT], [], {}, "none", "not sustained yet: feature_drift 1/2"),
        # one drifted feature is below min_drifted_features (2)
        ([ONE_FEATURE] * 10, [], {}, "none", "healthy"),
        # sustained: the regime began at most lookback_days (6) before the first signal,
        # so min_recent_days (7) of it are labelled as soon as the signal is sustained
        ([HEALTHY, DRIFT, DRIFT], [], {}, "retrain", "feature drift sustained"),
        # sustained long enough: retrain
        ([HEALTHY] + [DRIFT] * 4, [], {}, "retrain", "feature drift sustained"),
        # degraded accuracy counts at once (accuracy_sustained_checks 1), labels permitting
        ([HEALTHY] * 3 + [DEGRADED] * 2, [], {}, "retrain", "degraded accuracy sustained"),
        ([HEALTHY, DEGRADED], [], {}, "hold", "waiting for 7 labelled days"),
        # prediction drift is a trigger too
        ([HEALTHY] + [PRED] * 4, [], {}, "retrain", "prediction drift sustained"),
        # a rollout in progress finishes first
        ([HEALTHY] + [DRIFT] * 4, [], {"rollout_running": "rollout #3"}, "hold", "is running"),
        # cool-down of 7 days after the last retrain started
        ([HEALTHY] + [DRIFT] * 6, [at(3)], {}, "hold", "cool-down"),
        ([HEALTHY] + [DRIFT] * 12, [at(3)], {}, "retrain", "feature drift sustained"),
        # at most 3 retrains in 30 days
        ([HEALTHY] + [DRIFT] * 29, [at(1), at(9), at(17)], {}, "hold", "cap reached"),
        ([HEALTHY] + [DRIFT] * 33, [at(1), at(9), at(17)], {}, "retrain", "sustained"),
        # an open episode keeps accuracy firing until WAPE is back within 10 % of baseline
        ([HEALTHY] * 12, [], {"baseline_wape": 0.30}, "retrain", "degraded accuracy sustained"),
        ([HEALTHY] * 12, [], {"baseline_wape": 0.33}, "none", "healthy"),
    ],
)
def test_policy_table(
    checks: list[dict[str, object]],
    retrains: list[datetime],
    kwargs: dict[str, object],
    action: str,
    reason: str,
) -> None:
    decision = decide(history(*checks), retrains, CFG, **kwargs)  # type: ignore[arg-type]
    assert decision.action == action, decision.reason
    assert reason in decision.reason
    assert (decision.blocker is not None) == (action == "hold")


def test_a_retrain_waits_for_labelled_days_of_the_new_regime() -> None:
    cfg = LoopConfig(min_recent_days=10)
    decision = decide(history(HEALTHY, DRIFT, DRIFT), [], cfg)
    assert decision.action == "hold" and "waiting for 10 labelled days" in decision.reason
    assert "(7 so far)" in decision.reason
    assert decide(history(HEALTHY, *[DRIFT] * 5), [], cfg).action == "retrain"


def test_disabled_loop_holds_and_says_so() -> None:
    decision = decide(history(HEALTHY, *[DRIFT] * 10), [], LoopConfig(enabled=False))
    assert decision.action == "hold" and "loop.enabled is false" in decision.reason
    assert decision.blocker == "disabled"


def test_only_configured_triggers_count() -> None:
    cfg = LoopConfig(triggers=("accuracy",))
    assert decide(history(HEALTHY, *[DRIFT] * 10), [], cfg).action == "none"
    assert fired(check(0, **DRIFT, **DEGRADED), cfg) == ("accuracy",)


def test_retrain_weights_the_regime_from_before_the_first_signal() -> None:
    checks = history(*[HEALTHY] * 5, *[DEGRADED] * 8)
    decision = decide(checks, [], CFG)
    assert decision.action == "retrain"
    first_signal_day = DAY0 + timedelta(days=5)  # the newest day the first firing check saw
    assert decision.since == first_signal_day
    assert decision.recent_from == first_signal_day - timedelta(days=CFG.lookback_days)


def test_a_healthy_check_breaks_the_streak() -> None:
    checks = history(HEALTHY, DRIFT, DRIFT, DRIFT, HEALTHY, DRIFT)
    decision = decide(checks, [], CFG)
    assert decision.action == "none" and "1/2" in decision.reason


def test_no_champion_no_decision() -> None:
    decision = decide([check(0, champion=None, enough_data=False)], [], CFG)
    assert decision.action == "none"


def test_signals_round_trip_json() -> None:
    s = check(3, **DRIFT, **DEGRADED)
    assert Signals.from_json(s.to_json()) == s


def test_an_open_episode_keeps_its_start_across_quiet_checks() -> None:
    # A fresh champion has too few labels to judge: the streak restarts, the episode not.
    checks = history(*[DEGRADED] * 3, *[HEALTHY] * 8, *[DEGRADED] * 2)
    episode_start = DAY0
    decision = decide(checks, [], CFG, baseline_wape=0.35, episode_since=episode_start)
    assert decision.action == "retrain"
    assert decision.since == episode_start
    assert decision.recent_from == episode_start - timedelta(days=CFG.lookback_days)


@pytest.mark.parametrize(
    ("window", "delay", "coverage", "lag"),
    [
        (7, 1, 0.5, 0),
        (7, 2, 0.5, 0),
        (7, 3, 0.5, 1),
        (7, 4, 0.5, 2),
        (7, 7, 0.5, 5),
        (14, 7, 0.5, 1),
        (7, 7, 0.0, 0),
        (7, 2, 1.0, 3),
    ],
)
def test_accuracy_trails_the_drift_window_only_as_far_as_the_labels_need(
    window: int, delay: int, coverage: float, lag: int
) -> None:
    assert accuracy_lag_days(window, delay, coverage) == lag
    # the lagged window's labelled days (day + delay <= today) reach the coverage
    labelled = window - max(0, delay - lag)
    assert labelled / window >= coverage


def test_a_lagged_accuracy_signal_dates_the_episode_by_the_window_it_judged() -> None:
    def lagged(day: int, **kw: object) -> Signals:
        s = check(day, **kw)
        return replace(
            s, accuracy_window=(s.window[0] - timedelta(days=4), s.window[1] - timedelta(days=4))
        )

    checks = [lagged(i) for i in range(12)] + [lagged(12 + i, **DEGRADED) for i in range(10)]
    decision = decide(checks, [], CFG, label_delay_days=7)
    assert decision.action == "retrain", decision.reason
    assert decision.since == DAY0 + timedelta(days=12 - 4)  # the first firing check's window
    assert Signals.from_json(checks[-1].to_json()) == checks[-1]


def test_a_scheduled_challenger_is_due_when_the_champion_and_last_retrain_are_old() -> None:
    cfg = LoopConfig(challenger_every_days=28)
    as_of = DAY0
    assert scheduled_challenger(at(27), as_of, None, cfg) is None  # 27 days old
    due = scheduled_challenger(at(28), as_of, None, cfg)  # 28 days
    assert due is not None and due.action == "retrain" and due.reason.startswith(SCHEDULED)
    assert due.evidence == {"scheduled": True, "age_days": 28, "follow_up": False}
    assert due.recent_from == DAY0 + timedelta(days=27)  # the last labelled day
    assert "beats the champion by 2%" in due.reason
    # a retrain since (drift's or the schedule's own) restarts the count
    assert scheduled_challenger(at(47), as_of, at(20), cfg) is None
    assert scheduled_challenger(at(48), as_of, at(20), cfg) is not None


def test_a_scheduled_challenger_waits_for_new_data_not_the_clock() -> None:
    """A champion trained on the newest data is not stale because time passed with no new
    rows: a retrain would learn the same rows (a project whose table stopped growing)."""
    cfg = LoopConfig(challenger_every_days=28)
    newest = DAY0 + timedelta(days=1)
    assert scheduled_challenger(at(400), DAY0, None, cfg, newest_data=newest) is None
    assert scheduled_challenger(at(40), DAY0, None, cfg, newest_data=DAY0 + timedelta(27)) is None
    due = scheduled_challenger(at(400), DAY0, None, cfg, newest_data=DAY0 + timedelta(days=28))
    assert due is not None and due.evidence["age_days"] == 28
    # data newer than the clock (a replay holds its whole table) counts to the clock
    late = scheduled_challenger(at(28), DAY0, None, cfg, newest_data=DAY0 + timedelta(days=99))
    assert late is not None and late.evidence["age_days"] == 28


@pytest.mark.parametrize(
    ("cfg", "running"),
    [
        (LoopConfig(challenger_every_days=0), None),
        (LoopConfig(challenger_every_days=None), None),
        (LoopConfig(challenger_every_days=28, enabled=False), None),
        (LoopConfig(challenger_every_days=28), "rollout #3 of v2 (canary)"),
    ],
)
def test_no_scheduled_challenger_when_off_disabled_or_a_rollout_runs(
    cfg: LoopConfig, running: str | None
) -> None:
    assert scheduled_challenger(at(90), DAY0, None, cfg, rollout_running=running) is None


def test_after_a_change_challengers_follow_as_the_new_regime_doubles() -> None:
    """A model fitted 7 days into a new regime is followed by challengers when the regime
    has 14, 28 and 56 days (each weighting the regime's rows), then the plain schedule."""
    cfg = LoopConfig(challenger_every_days=56, min_recent_days=7, lookback_days=6)
    change = DAY0 + timedelta(days=100)
    fitted = at(107)  # the drift retrain, 7 days into the regime
    due = partial(scheduled_challenger, champion_as_of=DAY0, cfg=cfg, regime_since=change)
    assert due(at(113), last_retrain=fitted) is None
    first = due(at(114), last_retrain=fitted)
    assert first is not None and first.evidence["follow_up"] is True
    assert first.recent_from == change - timedelta(days=6)
    assert retrain_weight(first, cfg) == cfg.recent_weight
    assert "doubled" in first.reason
    assert due(at(127), last_retrain=at(114)) is None  # the regime had 14 days: 14 more
    assert due(at(128), last_retrain=at(114)) is not None
    assert due(at(155), last_retrain=at(128)) is None  # 28 days: 28 more
    assert due(at(156), last_retrain=at(128)) is not None
    # fitted on 56 days of the regime: the plain schedule, unweighted
    assert due(at(211), last_retrain=at(156)) is None
    plain = due(at(212), last_retrain=at(156))
    assert plain is not None and plain.evidence["follow_up"] is False
    assert retrain_weight(plain, cfg) == 1.0
    # a drift retrain's decision weighs the regime's rows
    assert retrain_weight(Decision("retrain", "drift"), cfg) == cfg.recent_weight


def test_accuracy_judged_on_its_labels_acts_while_the_window_has_too_few_rows_for_drift() -> None:
    """A sparse table's new champion: 22 rows (drift needs 30) but enough labels to judge
    its error degraded. Accuracy fires; drift on the same thin window does not."""
    thin_degraded = {**THIN, **DEGRADED}
    decision = decide(history(*[thin_degraded] * 3), [], CFG)
    assert decision.action == "retrain" and decision.triggers == ("accuracy",), decision.reason
    thin_drift = {**THIN, **DRIFT, **PRED, "accuracy_state": "ok", "wape": 0.35}
    quiet = decide(history(*[thin_drift] * 5), [], CFG)
    assert quiet.action == "none" and quiet.reason == "healthy"
    assert fired(check(0, **thin_drift), CFG) == ()
