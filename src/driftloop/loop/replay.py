"""``driftloop replay``: backtest the whole loop on a project's own history.

Version 1 is trained on what is known at the start; then the days up to the end are
played in event-time order through a real server on a simulated clock, labels arriving
after the label delay, with the controller checking every day and rolling out what it
retrains. Beside what was served, two baselines are scored offline on the same rows: the
first model frozen (never retrained) and a model retrained on a fixed schedule. The demo
is this replay on the retail scenario, with a broken challenger submitted on day one.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from driftloop.clock import Clock, SimulatedClock
from driftloop.errors import DataError
from driftloop.features.store import FeatureStore
from driftloop.features.training_set import build_training_set
from driftloop.loop.schedule import ScheduleThread, scheduled_predictions, scored
from driftloop.loop.simulate import DayServed, Intervention, Simulation, midnight
from driftloop.loop.store import LoopEvent, LoopStore
from driftloop.loop.timeline import DayRecord, KeyNumber, Timeline, TimelineEvent
from driftloop.monitoring.assess import ACCURACY_METRICS, metric_label
from driftloop.pipeline.train import TrainingResult, run_training
from driftloop.project import Project
from driftloop.registry import open_registry
from driftloop.registry.base import ModelRegistry
from driftloop.statistics.accuracy import log_loss, pr_auc, roc_auc, wape

if TYPE_CHECKING:
    from driftloop.rollout.controller import RolloutController

__all__ = [
    "REPLAY_STEPS",
    "ReplayResult",
    "day_records",
    "period_error",
    "replay_error",
    "run_replay",
    "scenario_shift_date",
    "scheduled_predictions",
    "summarize_replay",
    "trailing_wape",
    "versions_table",
]

REPLAY_STEPS = (
    "compute and apply features",
    "train v1",
    "serve and run the loop",
    "score the frozen v1 and the fixed schedule",
    "write the report",
)
TRAILING_DAYS = 7
DEFAULT_SCHEDULE_DAYS = 7


@dataclass(frozen=True)
class ReplayResult:
    """What a replay served, decided and compared."""

    project: Project
    registry: ModelRegistry
    horizon: tuple[date, date]
    days: list[DayServed]
    served: pd.DataFrame  # day, entity keys, version, prediction, label, request_id, route
    frozen: pd.DataFrame  # day, prediction, label: version 1 never replaced
    scheduled: pd.DataFrame  # the same for the fixed-schedule retrain (may be empty)
    schedule_days: int
    events: list[LoopEvent]
    first: TrainingResult


def replay_error(project: Project) -> tuple[str, str, Callable[[np.ndarray, np.ndarray], float]]:
    """The accuracy metric the monitor judges this project by: key, label, function."""
    metric = ACCURACY_METRICS[project.config.training.task]
    return metric, metric_label(metric), log_loss if metric == "log_loss" else wape


def trailing_wape(per_day: pd.DataFrame, day: date, days: int = TRAILING_DAYS) -> float:
    window = per_day[(per_day["day"] > day - timedelta(days=days)) & (per_day["day"] <= day)]
    return wape(window["label"].to_numpy("float64"), window["prediction"].to_numpy())


def frozen_predictions(
    store: FeatureStore, registry: ModelRegistry, version: str, start: date, end: date
) -> pd.DataFrame:
    """What ``version`` would have answered on ``start``..``end`` (exclusive), offline."""
    rows = build_training_set(store, start, end - timedelta(days=1))
    return scored(store.project, rows, registry.load_model(version).predict(rows))


def run_replay(
    project: Project,
    start: date,
    end: date,
    *,
    schedule_days: int = DEFAULT_SCHEDULE_DAYS,
    rounds_per_day: int = 12,
    interventions: Mapping[date, Intervention] | None = None,
    progress: Callable[[str], None] = lambda _step: None,
    on_day: Callable[[DayServed], None] | None = None,
    on_schedule: Callable[[int, int], None] = lambda _done, _total: None,
) -> ReplayResult:
    """Apply the features, train v1 as of ``start``, and play ``start``..``end`` (exclusive)
    through a real server with the loop running; then score the baselines."""
    from driftloop.loop.controller import LoopController
    from driftloop.serving.server import BackgroundServer, build_context

    if end <= start:
        raise DataError(f"--until {end} is not after --from {start}: widen the range")
    progress(REPLAY_STEPS[0])
    store = FeatureStore(project)
    store.apply()

    progress(REPLAY_STEPS[1])
    clock = SimulatedClock(midnight(start))
    registry = open_registry(project, clock)
    first = _first_version(project, registry, start)

    # The fixed-schedule control depends on the offline features only: its training set is
    # read here, its models are trained in a thread while the days are served (LightGBM
    # leaves Python's lock while it trains), and collected after.
    schedule = ScheduleThread(project, store, start, end, schedule_days)
    progress(REPLAY_STEPS[2])
    token = secrets.token_urlsafe(24)
    ctx = build_context(project, registry=registry, clock=clock, admin_token=token)
    with BackgroundServer(ctx) as server:
        rollouts = _rollouts(project, registry, clock, server.url, token)
        loop = LoopController(project, registry, rollouts, clock)
        sim = Simulation(store, server.url, loop, clock, ctx.flush_logs, rounds_per_day)
        with schedule:
            days = sim.run(start, end, interventions, on_day)
        served = sim.served_frame()

    progress(REPLAY_STEPS[3])
    frozen = frozen_predictions(store, registry, first.version, start, end)
    scheduled = schedule.result(on_schedule)
    events = LoopStore(project.state_dir / "state.db").events(registry.model_name)
    return ReplayResult(
        project,
        registry,
        (start, end),
        days,
        served,
        frozen,
        scheduled,
        schedule_days,
        events,
        first,
    )


def _first_version(project: Project, registry: ModelRegistry, start: date) -> TrainingResult:
    """Version 1, trained as of ``start`` in an empty registry; refused if it fails its gate."""
    if registry.versions():
        raise DataError(
            f"{project.root} already has registered models: a replay starts from an empty "
            "registry; start over with `driftloop replay --fresh` (keeps your config, data "
            "and feature_repo/)"
        )
    first = run_training(project, registry, start, actor="replay")
    if not first.gate.passed:
        raise DataError(
            f"version 1 (trained as of {start}) failed its gate: {first.gate.summary()}; "
            "start the replay later (--from) or adjust training.gate"
        )
    return first


def _rollouts(
    project: Project, registry: ModelRegistry, clock: Clock, url: str, token: str
) -> RolloutController:
    """The rollout controller of a replay: the server's admin API routes, its metrics and
    its logged outcomes judge."""
    from driftloop.rollout.controller import RolloutController
    from driftloop.rollout.outcomes import LogOutcomeSource
    from driftloop.rollout.router import ServerAdminRouter
    from driftloop.rollout.sources import ServerMetricsSource
    from driftloop.rollout.store import RolloutStore

    return RolloutController(
        registry=registry,
        router=ServerAdminRouter(url, token),
        metrics=ServerMetricsSource(url, registry.model_name),
        store=RolloutStore(project.state_dir / "state.db"),
        config=project.config.rollout,
        clock=clock,
        outcomes=LogOutcomeSource(
            project.state_dir,
            project.config.rollout.outcomes.business_metric,
            project.config.training.task,
        ),
    )


def day_records(result: ReplayResult) -> list[DayRecord]:
    """One record per played day: traffic shares, WAPE per version and of each baseline,
    and what the controller saw."""
    served = result.served
    out = []
    by_day = dict(tuple(served.groupby("day"))) if not served.empty else {}

    def per_day(frame: pd.DataFrame) -> dict[Any, pd.DataFrame]:
        return dict(tuple(frame.groupby("day"))) if not frame.empty else {}

    frozen, scheduled = per_day(result.frozen), per_day(result.scheduled)
    error = replay_error(result.project)[2]

    def score(rows: pd.DataFrame | None) -> float | None:
        if rows is None or rows.empty:
            return None
        return error(rows["label"].to_numpy("float64"), rows["prediction"].to_numpy("float64"))

    for d in result.days:
        rows = by_day.get(d.day, served.iloc[0:0])
        total = max(len(rows), 1)
        s = d.signals
        out.append(
            DayRecord(
                day=d.day,
                weights={str(v): len(g) / total for v, g in rows.groupby("version")},
                wape={
                    str(v): error(g["label"].to_numpy("float64"), g["prediction"].to_numpy())
                    for v, g in rows.groupby("version")
                },
                served_wape=score(rows),
                frozen_wape=score(frozen.get(d.day)),
                scheduled_wape=score(scheduled.get(d.day)),
                max_feature_psi=s.max_feature_psi if s else None,
                drifted_features=len(s.drifted_features) if s else 0,
                prediction_kl=s.prediction_kl if s else None,
                accuracy_ratio=s.accuracy_ratio if s else None,
                label_coverage=s.label_coverage if s else None,
                champion=d.champion,
                challenger=d.challenger,
                drift_judged=bool(s and s.enough_data),
                accuracy_judged=bool(s and s.accuracy_state in ("ok", "degraded")),
            )
        )
    return out


def versions_table(registry: ModelRegistry) -> dict[str, dict[str, str]]:
    out = {}
    for v in registry.versions():
        tags = v.tags
        out[v.version] = {
            "aliases": ", ".join(v.aliases) or "-",
            "parent": tags.get("driftloop.parent_version") or "-",
            "as of": tags.get("driftloop.as_of", "-"),
            "gate": v.gate,
            "holdout WAPE": f"{v.metrics.get('holdout_wape', math.nan):.4f}",
            **(
                {"holdout ROC AUC": f"{v.metrics['holdout_roc_auc']:.4f}"}
                if "holdout_roc_auc" in v.metrics
                else {}
            ),
            "trigger": tags.get("driftloop.trigger") or tags.get("driftloop.actor", "-"),
            "recency": tags.get("driftloop.recency") or "-",
            "corrupted with": tags.get("driftloop.frame_hook") or "-",
        }
    return out


def period_error(
    frame: pd.DataFrame,
    start: date,
    end: date,
    error: Callable[[np.ndarray, np.ndarray], float] = wape,
) -> float:
    if frame.empty:
        return math.nan
    rows = frame[(frame["day"] >= start) & (frame["day"] < end)]
    return error(rows["label"].to_numpy("float64"), rows["prediction"].to_numpy("float64"))


def _period_ranking(frame: pd.DataFrame, start: date, end: date) -> str:
    """``ROC AUC (PR AUC)`` of a classifier's probabilities over ``start``..``end``."""
    if frame.empty:
        return "-"
    rows = frame[(frame["day"] >= start) & (frame["day"] < end)]
    y = rows["label"].to_numpy("float64")
    p = rows["prediction"].to_numpy("float64")
    ok = np.isfinite(p)
    auc = roc_auc(y[ok], p[ok])
    return "-" if math.isnan(auc) else f"{auc:.3f} ({pr_auc(y[ok], p[ok]):.3f})"


def scenario_shift_date(project: Project) -> date | None:
    """A generated scenario's shift date, from its ground truth beside the data."""
    import json

    path = project.scenario_truth_path
    if not path.is_file():
        return None
    truth = json.loads(path.read_text(encoding="utf-8"))
    return date.fromisoformat(truth["shift_date"]) if truth.get("shift_enabled") else None


def summarize_replay(result: ReplayResult, title: str, scenario: str) -> Timeline:
    """The replay's timeline and key numbers: alerts, retrains, rollouts, and accuracy
    with the loop against the frozen model and the fixed schedule."""
    events = result.events
    start, end = result.horizon
    kinds = [e.kind for e in events]
    alerts = kinds.count("drift_detected")
    first_alert = next((e.at.date() for e in events if e.kind == "drift_detected"), None)
    quarter = start + (end - start) * 3 // 4
    metric, label, error = replay_error(result.project)
    sched = f"retrained every {result.schedule_days} days" if result.schedule_days else ""
    names = "loop / frozen v1" + (f" / {sched}" if sched else "")
    compared = [result.served, result.frozen, *([result.scheduled] if sched else [])]
    key = [
        KeyNumber(
            "days played / requests / labels fed back",
            f"{len(result.days)} / {sum(d.requests for d in result.days):,} / "
            f"{sum(d.feedback for d in result.days):,}",
        ),
        KeyNumber("drift episodes detected (first on)", f"{alerts} ({first_alert or '-'})"),
        KeyNumber(
            "retrains / rollouts / promotions / rollbacks",
            f"{kinds.count('retrain_started')} / {kinds.count('rollout_started')} / "
            f"{kinds.count('promoted')} / {kinds.count('rolled_back')}",
        ),
        KeyNumber(
            f"{label} over the whole replay: " + names,
            " / ".join(f"{period_error(f, start, end, error):.3f}" for f in compared),
        ),
        KeyNumber(
            f"{label} over the last quarter: " + names,
            " / ".join(f"{period_error(f, quarter, end, error):.3f}" for f in compared),
        ),
    ]
    if result.project.config.training.task == "classification":
        key += [
            KeyNumber(
                f"ROC AUC (PR AUC) over the whole replay: {names}",
                " / ".join(_period_ranking(f, start, end) for f in compared),
            ),
            KeyNumber(
                f"ROC AUC (PR AUC) over the last quarter: {names}",
                " / ".join(_period_ranking(f, quarter, end) for f in compared),
            ),
        ]
    mon = result.project.config.monitoring
    per_day = day_records(result)
    timeline = Timeline(
        title=title,
        project=str(result.project.root),
        scenario=scenario,
        shift_date=scenario_shift_date(result.project),
        thresholds={
            "psi_warning": mon.psi_warning,
            "psi_act": mon.psi_act,
            "prediction_kl": mon.prediction_kl,
            "accuracy_ratio": mon.accuracy_ratio,
        },
        reference_wape=float(result.first.metrics.get(metric, math.nan)),
        days=tuple(per_day),
        events=tuple(
            TimelineEvent(e.at, e.kind, e.message, e.version, dict(e.evidence))
            for e in events
            if e.kind != "check"
        ),
        key_numbers=tuple(key),
        versions=versions_table(result.registry),
        accuracy_metric=label,
    )
    return timeline
