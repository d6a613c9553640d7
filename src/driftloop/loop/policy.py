"""The controller's policy (pure): the signals of recent checks in, one decision out.

A check reduces the champion's trailing monitoring window to ``Signals``. ``decide``
looks at the checks so far and the retrains already started and answers with one
``Decision``: nothing to do, a retrain (with the day its recent window begins), or a
hold that names what stops the retrain (the loop is disabled, a rollout is running, the
cool-down, the cap per period, too few labelled days since the signal began).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal

from driftloop.config import LoopConfig, Trigger
from driftloop.monitoring.assess import VersionAssessment

__all__ = [
    "Decision",
    "Signals",
    "accuracy_lag_days",
    "decide",
    "fired",
    "signals_from",
    "trigger_words",
]

JUDGED_ACCURACY = ("ok", "degraded")  # states the monitor gives on enough labels

TRIGGER_WORDS = {
    "feature_drift": "feature drift",
    "prediction_drift": "prediction drift",
    "accuracy": "degraded accuracy",
}


def trigger_words(triggers: Sequence[str]) -> str:
    """Triggers as a person reads them: 'feature drift and degraded accuracy'."""
    words = [TRIGGER_WORDS.get(t, t) for t in triggers]
    return " and ".join(words) if len(words) <= 2 else ", ".join(words[:-1]) + " and " + words[-1]


Action = Literal["none", "retrain", "hold"]
Blocker = Literal["disabled", "rollout", "cooldown", "cap", "labels", "data"]


@dataclass(frozen=True)
class Signals:
    """One check of the champion's trailing window."""

    at: datetime
    champion: str | None
    window: tuple[date, date]  # event days, start inclusive, end exclusive
    rows: int
    enough_data: bool
    drifted_features: tuple[str, ...]  # at PSI >= monitoring.psi_act
    max_feature_psi: float | None
    prediction_drift: bool
    prediction_kl: float | None
    accuracy_state: str  # ok | degraded | not enough labels | no labels
    accuracy_ratio: float | None
    label_coverage: float | None
    # The window's error on delayed labels (enough of them), in ``accuracy_metric``: WAPE,
    # or log loss for classification (monitoring.assess.ACCURACY_METRICS).
    wape: float | None = None
    # Where accuracy was judged when labels come too late for the trailing window: the
    # same length, ending ``accuracy_lag_days`` earlier (None: the trailing window).
    accuracy_window: tuple[date, date] | None = None
    accuracy_metric: str = "wape"
    # The median day's error / the holdout's, when a degraded-looking window was judged
    # by its days too (monitoring.day_min_labels): below the ratio, a few days carry it.
    accuracy_day_ratio: float | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat(),
            "champion": self.champion,
            "window": [self.window[0].isoformat(), self.window[1].isoformat()],
            "rows": self.rows,
            "enough_data": self.enough_data,
            "drifted_features": list(self.drifted_features),
            "max_feature_psi": self.max_feature_psi,
            "prediction_drift": self.prediction_drift,
            "prediction_kl": self.prediction_kl,
            "accuracy_state": self.accuracy_state,
            "accuracy_ratio": self.accuracy_ratio,
            "label_coverage": self.label_coverage,
            "wape": self.wape,
            **(
                {"accuracy_window": [d.isoformat() for d in self.accuracy_window]}
                if self.accuracy_window
                else {}
            ),
            **({"accuracy_metric": self.accuracy_metric} if self.accuracy_metric != "wape" else {}),
            **(
                {"accuracy_day_ratio": self.accuracy_day_ratio}
                if self.accuracy_day_ratio is not None
                else {}
            ),
        }

    @classmethod
    def from_json(cls, doc: dict[str, object]) -> Signals:
        w = doc["window"]
        assert isinstance(w, list)
        return cls(
            at=datetime.fromisoformat(str(doc["at"])),
            champion=None if doc["champion"] is None else str(doc["champion"]),
            window=(date.fromisoformat(w[0]), date.fromisoformat(w[1])),
            rows=int(doc["rows"]),  # type: ignore[call-overload]
            enough_data=bool(doc["enough_data"]),
            drifted_features=tuple(doc["drifted_features"]),  # type: ignore[arg-type]
            max_feature_psi=_opt(doc["max_feature_psi"]),
            prediction_drift=bool(doc["prediction_drift"]),
            prediction_kl=_opt(doc["prediction_kl"]),
            accuracy_state=str(doc["accuracy_state"]),
            accuracy_ratio=_opt(doc["accuracy_ratio"]),
            label_coverage=_opt(doc["label_coverage"]),
            wape=_opt(doc.get("wape")),
            accuracy_window=_window(doc.get("accuracy_window")),
            accuracy_metric=str(doc.get("accuracy_metric", "wape")),
            accuracy_day_ratio=_opt(doc.get("accuracy_day_ratio")),
        )


def _window(value: object) -> tuple[date, date] | None:
    if not isinstance(value, list) or len(value) != 2:
        return None
    return date.fromisoformat(str(value[0])), date.fromisoformat(str(value[1]))


def accuracy_lag_days(window_days: int, label_delay_days: int, min_label_coverage: float) -> int:
    """How far the accuracy window trails the drift window so that, with labels arriving
    ``label_delay_days`` after their day, more than ``min_label_coverage`` of its days are
    labelled, with a day to spare (traffic is not even across days): 0 while the trailing
    window itself can be (a delay of a day in a week)."""
    if min_label_coverage <= 0.0:
        return 0
    unlabelled = math.floor(window_days * (1.0 - min_label_coverage) + 1e-9)
    return label_delay_days - unlabelled + 1 if label_delay_days >= unlabelled else 0


def _opt(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def signals_from(
    at: datetime,
    window: tuple[date, date],
    assessment: VersionAssessment | None,
    lagged: tuple[tuple[date, date], VersionAssessment | None] | None = None,
) -> Signals:
    """Reduce the champion's assessment of one window (None: it served nothing).

    ``lagged``: an earlier window and the champion's assessment there, whose accuracy
    replaces the trailing window's (labels that come a week late never cover a week)."""
    if assessment is None:
        return Signals(at, None, window, 0, False, (), None, False, None, "no labels", None, None)
    judged = [f for f in assessment.features if f.level != "not enough data"]
    drifted = tuple(sorted(f.name for f in judged if f.level == "act"))
    kinds = {a.kind for a in assessment.alerts}
    acc = assessment.accuracy
    if lagged is not None:
        acc = lagged[1].accuracy if lagged[1] is not None else None
    pred = assessment.prediction
    return Signals(
        at=at,
        champion=assessment.version,
        window=window,
        rows=assessment.rows,
        enough_data=assessment.enough_data,
        drifted_features=drifted,
        max_feature_psi=_opt(max((f.psi for f in judged), default=math.nan)),
        prediction_drift="prediction_drift" in kinds,
        prediction_kl=_opt(pred.kl),
        accuracy_state=acc.state if acc is not None else "no labels",
        accuracy_ratio=_opt(acc.ratio) if acc is not None else None,
        label_coverage=acc.coverage if acc is not None else None,
        wape=_opt(acc.error) if acc is not None and acc.state != "not enough labels" else None,
        accuracy_window=lagged[0] if lagged is not None else None,
        accuracy_metric=acc.metric if acc is not None else "wape",
        accuracy_day_ratio=_opt(acc.day_ratio) if acc is not None else None,
    )


def fired(
    signals: Signals, cfg: LoopConfig, baseline_wape: float | None = None
) -> tuple[Trigger, ...]:
    """The triggers this one check shows (before persistence).

    With ``baseline_wape`` (an episode is open: the WAPE before it began), accuracy also
    fires while the window's WAPE is not back within ``recovery_tolerance`` of it.

    Drift needs the window's rows (``enough_data``); accuracy needs its labels only (the
    monitor judges it from ``monitoring.min_labels``). A sparse table's new champion
    serves 30 rows in 30 days: Puerto Rico's champion after Hurricane Maria served at 3.8x
    its holdout error for three weeks, judged degraded on 22 labels, while every check
    waited for 30 rows before it could act.
    """
    out: list[Trigger] = []
    if signals.enough_data and len(signals.drifted_features) >= cfg.min_drifted_features:
        out.append("feature_drift")
    if signals.enough_data and signals.prediction_drift:
        out.append("prediction_drift")
    unrecovered = (
        baseline_wape is not None
        and signals.wape is not None
        and signals.wape > baseline_wape * (1.0 + cfg.recovery_tolerance)
    )
    if signals.accuracy_state == "degraded" or unrecovered:
        out.append("accuracy")
    return tuple(t for t in out if t in cfg.triggers)


@dataclass(frozen=True)
class Decision:
    """What the controller does after a check, and why."""

    action: Action
    reason: str
    triggers: tuple[Trigger, ...] = ()  # sustained triggers behind a retrain or hold
    since: date | None = None  # the day the signal began (retrain: recent rows start earlier)
    recent_from: date | None = None  # retrain: rows from this day are weighted up
    evidence: dict[str, object] = field(default_factory=dict)
    blocker: Blocker | None = None  # hold: what stops the retrain


def _streak(
    history: Sequence[Signals], trigger: Trigger, cfg: LoopConfig, baseline: float | None
) -> int:
    n = 0
    for s in reversed(history):
        if trigger not in fired(s, cfg, baseline):
            break
        n += 1
    return n


def _episode_start(
    history: Sequence[Signals], cfg: LoopConfig, baseline: float | None
) -> date | None:
    """First event day of the current unbroken run of checks where any trigger fired."""
    start = None
    for s in reversed(history):
        triggers = fired(s, cfg, baseline)
        if not triggers:
            break
        ends = [
            s.accuracy_window[1] if t == "accuracy" and s.accuracy_window else s.window[1]
            for t in triggers
        ]
        start = min(ends) - timedelta(days=1)  # the newest day this check judged
    if start is None:
        return None
    # The run's first check saw the change inside its window: the signal began at the
    # latest in that window; its last day is a conservative (late) estimate.
    return start


def _blocker(
    at: datetime, retrains: Sequence[datetime], cfg: LoopConfig, rollout_running: str | None
) -> tuple[Blocker, str] | None:
    """What stops a retrain the signals ask for, before its data is looked at: the loop is
    disabled, a rollout runs, the cool-down after the last retrain, the cap per period."""
    if not cfg.enabled:
        return "disabled", "sustained, but loop.enabled is false: retrain by hand"
    if rollout_running:
        return "rollout", f"sustained; {rollout_running} is running, it finishes first"
    if retrains:
        last = max(retrains)
        ready = last + timedelta(days=cfg.cooldown_days)
        if at < ready:
            return (
                "cooldown",
                f"sustained; cool-down after the retrain of "
                f"{last:%Y-%m-%d} until {ready:%Y-%m-%d %H:%M}",
            )
    period_start = at - timedelta(days=cfg.period_days)
    recent = [r for r in retrains if r > period_start]
    if len(recent) >= cfg.max_retrains:
        return (
            "cap",
            f"sustained; cap reached: {len(recent)} retrains in the last "
            f"{cfg.period_days} days (loop.max_retrains {cfg.max_retrains})",
        )
    return None


def decide(
    history: Sequence[Signals],
    retrains: Sequence[datetime],
    cfg: LoopConfig,
    *,
    rollout_running: str | None = None,
    label_delay_days: int = 1,
    baseline_wape: float | None = None,
    episode_since: date | None = None,
) -> Decision:
    """The decision after the newest check in ``history`` (oldest first).

    ``retrains`` are the start times of the retrains so far; ``rollout_running`` names a
    rollout in progress (the controller lets it finish before any retrain);
    ``baseline_wape`` is the WAPE before the open episode began and ``episode_since`` the
    day its signal began (None: no episode open); a retrain in an open episode weights
    the whole episode, even when the checks in between were quiet (a fresh champion
    with too few labels to judge).
    """
    if not history:
        return Decision("none", "no check yet")
    now = history[-1]
    if now.champion is None:
        return Decision("none", "no champion served in the window")
    if not (now.enough_data or now.accuracy_state in JUDGED_ACCURACY):
        return Decision("none", f"not enough data: {now.rows} rows in the window")
    streaks = {t: _streak(history, t, cfg, baseline_wape) for t in cfg.triggers}
    needed = {
        t: cfg.accuracy_sustained_checks if t == "accuracy" else cfg.sustained_checks
        for t in cfg.triggers
    }
    sustained = tuple(t for t, n in streaks.items() if n >= needed[t])
    evidence: dict[str, object] = {
        "streaks": streaks,
        "signals": now.to_json(),
        "baseline_wape": baseline_wape,
    }
    if not sustained:
        pending = {t: n for t, n in streaks.items() if n}
        if pending:
            held = ", ".join(f"{t} {n}/{needed[t]}" for t, n in pending.items())
            return Decision("none", f"signal not sustained yet: {held}", evidence=evidence)
        return Decision("none", "healthy", evidence=evidence)
    since = _episode_start(history, cfg, baseline_wape)
    assert since is not None  # a sustained trigger fired in the newest check
    if episode_since is not None:
        since = min(since, episode_since)
    names = trigger_words(sustained)

    def hold(blocker: Blocker, reason: str) -> Decision:
        return Decision("hold", reason, sustained, since, evidence=evidence, blocker=blocker)

    at = now.at
    blocked = _blocker(at, retrains, cfg, rollout_running)
    if blocked is not None:
        return hold(blocked[0], f"{names} {blocked[1]}")
    labelled_until = at.date() - timedelta(days=label_delay_days)  # last day with labels
    recent_from = since - timedelta(days=cfg.lookback_days)
    labelled_days = (labelled_until - recent_from).days + 1
    if labelled_days < cfg.min_recent_days:
        so_far = max(labelled_days, 0)
        return hold(
            "labels",
            f"{names} sustained since {since}; waiting for {cfg.min_recent_days} "
            f"labelled days of the new regime from {recent_from} "
            f"({so_far} so far)",
        )
    counts = ", ".join(f"{streaks[t]} checks of {TRIGGER_WORDS.get(t, t)}" for t in sustained)
    return Decision(
        "retrain",
        f"{names} sustained ({counts}"
        f"); retraining on the window to {labelled_until}, rows since {recent_from} weighted "
        f"{cfg.recent_weight:g}x",
        sustained,
        since,
        recent_from,
        evidence,
    )
