"""The closed loop: check the champion, decide under the policy, retrain, canary, promote.

``LoopController.check`` is one turn of the loop: it first moves a running rollout on
(one rollout tick), and when none is running it assesses the champion's trailing
monitoring window, asks the policy, and on "retrain" trains on the recent window with
recency weighting, gates against the champion, registers the version as challenger and
starts its canary through the rollout controller. Every check and decision goes to the
loop's event log with its evidence; rollout transitions are mirrored there too. The
episodes' bookkeeping is in :mod:`driftloop.loop.episodes`, the pace of checks and ticks
and the controller lease in :mod:`driftloop.loop.running`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from driftloop.clock import Clock
from driftloop.errors import (
    DriftloopError,
)
from driftloop.faults import crash_point
from driftloop.loop.assessor import ChampionAssessor, newest_event_day
from driftloop.loop.challenger import SCHEDULED, retrain_weight, scheduled_challenger
from driftloop.loop.episodes import Episodes, iso_day
from driftloop.loop.lease import ControllerLease, LeaseHolder
from driftloop.loop.newrows import with_new_rows
from driftloop.loop.outages import Outages
from driftloop.loop.policy import (
    Decision,
    Signals,
    decide,
)
from driftloop.loop.recovery import (
    RETRAIN_TAG,
    crash_on_step,
    finish_interrupted,
    mirror_quarantine,
)
from driftloop.loop.retraining import retrain_project
from driftloop.loop.running import run_turns, take_lease
from driftloop.loop.store import LoopEvent, LoopStore
from driftloop.pipeline.split import SplitTooSmall
from driftloop.pipeline.train import Recency, TrainingResult, run_training
from driftloop.project import Project
from driftloop.registry.base import CHALLENGER, CHAMPION, ModelRegistry
from driftloop.rollout.controller import RolloutController
from driftloop.rollout.store import Rollout
from driftloop.storage.quarantine import quarantine_damaged

__all__ = ["LoopController", "LoopTurn"]

logger = logging.getLogger("driftloop.loop")
HISTORY_CHECKS = 60
# What the loop cannot work without; while one is unreachable the loop pauses.
_MIRRORED = {
    "step": "rollout_step",
    "promoted": "promoted",
    "rolled_back": "rolled_back",
    "aborted": "aborted",
}

Trainer = Callable[..., TrainingResult]


@dataclass(frozen=True)
class LoopTurn:
    """What one turn did."""

    at: datetime
    signals: Signals
    decision: Decision
    rollout: Rollout | None  # the rollout touched in this turn
    trained: TrainingResult | None


class LoopController:
    """One model's loop over a project, a registry and a rollout controller."""

    def __init__(
        self,
        project: Project,
        registry: ModelRegistry,
        rollouts: RolloutController,
        clock: Clock,
        *,
        store: LoopStore | None = None,
        trainer: Trainer = run_training,
    ) -> None:
        self.project = project
        self.registry = registry
        self.rollouts = rollouts
        self.clock = clock
        self.store = store or LoopStore(project.state_dir / "state.db")
        self.trainer = trainer
        self.cfg = project.config.loop
        self.assessor = ChampionAssessor(project, registry)
        self.outages = Outages(project, registry, rollouts.router, self.store, clock)
        self.episodes = Episodes(project, registry, self.store)

    @property
    def model(self) -> str:
        return self.registry.model_name

    # -- the turn -------------------------------------------------------------------------
    def check(self) -> LoopTurn:
        """Move a running rollout on, assess, decide (a running rollout holds any retrain)
        and act."""
        now = self.clock.now()
        finish_interrupted(self.store, self.registry, self.model, now)
        self._adopt_rollout()
        moved = self.tick_rollout() or self._resume_orphan()
        running = None
        if moved is not None and not (moved.terminal and moved.applied):
            running = f"rollout #{moved.id} of v{moved.version} ({moved.label})"
        quarantine_damaged(self.project.state_dir)
        signals = self.assess(now)
        mirror_quarantine(self.store, self.model, self.project.state_dir, self.clock.now())
        history = [*self.store.checks(self.model, HISTORY_CHECKS), signals]
        episode = self.episodes.open()
        baseline = None if episode is None else episode.evidence.get("baseline_wape")
        decision = decide(
            history,
            self.store.retrains(self.model, scheduled=False),
            self.cfg,
            label_delay_days=self.project.config.labels.delay_days,
            rollout_running=running,
            baseline_wape=None if baseline is None else float(baseline),
            episode_since=None if episode is None else iso_day(episode.evidence.get("since")),
        )
        if decision.action == "retrain":
            decision = with_new_rows(self.project, self.store.retrains(self.model), decision, now)
        self.episodes.record_check(signals, decision, history, episode)
        if decision.action == "none":
            decision = self._scheduled(now, running) or decision
        trained, started = self.retrain(decision) if decision.action == "retrain" else (None, None)
        return LoopTurn(now, signals, decision, started or moved, trained)

    def _scheduled(self, now: datetime, running: str | None) -> Decision | None:
        """The scheduled challenger's retrain when it is due (policy.scheduled_challenger)."""
        champion = self.registry.alias(CHAMPION)
        as_of = iso_day(champion.tags.get("driftloop.as_of")) if champion is not None else None
        detected = self.store.last(self.model, "drift_detected")
        due = partial(
            scheduled_challenger,
            now,
            as_of,
            max(self.store.retrains(self.model), default=None),
            self.cfg,
            rollout_running=running,
            label_delay_days=self.project.config.labels.delay_days,
            regime_since=None if detected is None else iso_day(detected.evidence.get("since")),
        )
        if due() is None:  # due by the clock, then by the data (read only when due)
            return None
        decision = due(newest_data=newest_event_day(self.project))
        retrains = self.store.retrains(self.model)
        if decision and with_new_rows(self.project, retrains, decision, now) is decision:
            return decision
        return None

    def _unstarted(self) -> LoopEvent | None:
        """The newest gate_passed with no rollout recorded after it."""
        passed = self.store.last(self.model, "gate_passed")
        if passed is None or passed.version is None:
            return None
        later = self.store.events(self.model, kinds=("rollout_started", "rollout_refused"))
        return None if any(e.id > passed.id for e in later) else passed

    def _adopt_rollout(self) -> None:
        """A rollout the previous controller started but did not record gets recorded."""
        passed = self._unstarted()
        active = self.rollouts.store.active(self.model)
        if passed is not None and active is not None and active.version == passed.version:
            self._record_started(active)

    def _resume_orphan(self) -> Rollout | None:
        """A retrain that passed its gate but whose rollout never started (the controller
        stopped in between) gets its rollout now."""
        passed = self._unstarted()
        if passed is None or passed.version is None:
            return None
        challenger = self.registry.alias(CHALLENGER)
        if challenger is None or challenger.version != passed.version:
            return None
        return self.start_rollout(passed.version, "loop retrain, resumed after a restart")

    def tick_rollout(self) -> Rollout | None:
        """One tick of the running rollout, mirrored into the loop's log; None if none runs."""
        active = self.rollouts.store.active(self.model)
        if active is None:
            return None
        before = active.seq
        moved = self.rollouts.tick(active.id)
        if moved.seq != before:
            self._mirror(moved)
        return moved

    def run(
        self,
        until: datetime | None = None,
        on_turn: Callable[[LoopTurn], None] | None = None,
        *,
        lease: ControllerLease | None = None,
        on_wait: Callable[[LeaseHolder], None] | None = None,
    ) -> None:
        """Turn until ``until`` (forever without it): a check every ``check_every_hours``;
        between checks a running rollout is ticked every ``rollout.check_interval_s`` (the
        checks, and so the persistence of signals, keep their own pace).

        While the server, the registry or the feature store is unreachable the loop is
        paused: one ``paused`` event names it, nothing is checked, trained or ticked, and
        the dependencies are probed again every ``rollout.check_interval_s``; when all
        answer, a ``resumed`` event is recorded and the loop goes on where it stood.

        With a ``lease`` nothing runs until this controller holds it (``on_wait`` hears
        who holds it meanwhile); it is renewed at least every third of its time, and a
        controller that finds it taken stops acting and waits again."""
        if lease is None:
            run_turns(self, until, on_turn, None, None)
        elif take_lease(self, lease, until, on_wait):
            with lease.kept():
                run_turns(self, until, on_turn, lease, on_wait)

    # -- assessing ------------------------------------------------------------------------
    def assess(self, now: datetime) -> Signals:
        """The champion's signals at ``now`` (see :class:`ChampionAssessor`)."""
        return self.assessor.assess(now)

    # -- acting ---------------------------------------------------------------------------
    def retrain(self, decision: Decision) -> tuple[TrainingResult | None, Rollout | None]:
        """Train on the decision's window, gate, and start the canary of a passed version."""
        now = self.clock.now()
        assert decision.recent_from is not None
        scheduled = bool(decision.evidence.get("scheduled"))
        trigger = "schedule" if scheduled else ", ".join(decision.triggers)
        evidence = {
            "triggers": list(decision.triggers),
            "since": decision.since,
            "recent_from": decision.recent_from,
            "scheduled": scheduled,
        }
        started = self.store.record(
            self.model, now, "retrain_started", decision.reason, evidence=evidence
        )
        crash_point("loop.retrain_recorded")
        try:
            result = self.trainer(
                retrain_project(self.project, scheduled),
                self.registry,
                now.date(),
                actor="driftloop loop",
                on_pass="challenger",
                recency=Recency(decision.recent_from, retrain_weight(decision, self.cfg)),
                tags={
                    "driftloop.trigger": trigger,
                    "driftloop.trigger_since": str(decision.since),
                    RETRAIN_TAG: str(started.id),
                },
                progress=crash_on_step,
            )
        except SplitTooSmall as exc:
            logger.info("loop: retrain waits: %s", exc)
            self.store.record(
                self.model,
                self.clock.now(),
                "retrain_waiting",
                f"{exc} (again after the cool-down)",
                evidence={"retrain": started.id},
            )
            return None, None
        except DriftloopError as exc:
            logger.warning("loop: retrain failed: %s", exc)
            self.store.record(self.model, self.clock.now(), "retrain_failed", str(exc))
            return None, None
        crash_point("loop.registered")
        gate = {
            "summary": result.gate.summary(),
            "metrics": result.metrics,
            "champion_metrics": result.champion_metrics or {},
            "window": [result.split.train_start, result.split.holdout_end],
        }
        if not result.gate.passed:
            self.store.record(
                self.model,
                self.clock.now(),
                "gate_rejected",
                f"v{result.version} {result.gate.summary()}",
                version=result.version,
                evidence=gate,
            )
            return result, None
        self.store.record(
            self.model,
            self.clock.now(),
            "gate_passed",
            f"v{result.version} {result.gate.summary()}",
            version=result.version,
            evidence=gate,
        )
        crash_point("loop.gate_recorded")
        why = SCHEDULED if scheduled else f"loop retrain on {trigger}"
        return result, self.start_rollout(result.version, why)

    def start_rollout(self, version: str, why: str) -> Rollout | None:
        """Start (and record) the rollout of ``version``; a refusal is recorded, not raised."""
        try:
            rollout = self.rollouts.start(version, reason=why)
        except DriftloopError as exc:
            message = f"rollout of v{version} could not start: {exc}"
            self.store.record(
                self.model, self.clock.now(), "rollout_refused", message, version=version
            )
            return None
        crash_point("loop.rollout_started")
        self._record_started(rollout)
        crash_point("loop.rollout_recorded")
        return rollout

    def _record_started(self, rollout: Rollout) -> None:
        self.store.record(
            self.model,
            self.clock.now(),
            "rollout_started",
            f"rollout #{rollout.id}: {rollout.reason}",
            version=rollout.version,
            evidence={
                "rollout": rollout.id,
                "stable": rollout.stable,
                "strategy": rollout.strategy,
            },
        )

    def _mirror(self, rollout: Rollout) -> None:
        kind = _MIRRORED.get(rollout.state)
        if kind is None:
            return
        events = self.rollouts.store.events(rollout.id)
        evidence = dict(events[-1].evidence) if events else {}
        evidence["rollout"] = rollout.id
        evidence["weight"] = rollout.weight
        self.store.record(
            self.model,
            self.clock.now(),
            kind,
            f"rollout #{rollout.id} {rollout.label}: {rollout.reason}",
            version=rollout.version,
            evidence=evidence,
        )
