"""The rollout state machine: pending -> shadow -> step k -> promoted | rolled back | aborted.

Each :meth:`RolloutController.tick` does at most one transition, written with its evidence
before it is applied; applying (router weight, alias moves) is idempotent and checks the
live state first, so a rollout killed anywhere resumes from the stored state and never
applies a step twice. The strategies share the machine:

* canary: the steps of ``rollout.steps`` (10 -> 50 -> 100); every step but the last is
  judged against the stable version in the same window; passing the last judged step
  promotes (the last step, 100 %, is the promotion itself).
* blue-green: all traffic at once; the old champion stays loaded, so a rollback is a weight
  change. Judged like a step, with the stable's record from before the switch.
* A/B: a fixed split held until the business outcome differs significantly under an
  always-valid test; the better version wins. The canary's hard guards apply throughout.

The judging of a phase (shadow, step, A/B) is pure and lives in ``rollout.verdicts``; this
module reads the sources, records each verdict and applies it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from driftloop.clock import Clock, WallClock
from driftloop.config import RolloutConfig
from driftloop.errors import DriftloopError, MetricsUnavailable, RolloutError, RouterError
from driftloop.faults import crash_point
from driftloop.registry import aliases
from driftloop.registry.base import CHAMPION, ModelRegistry
from driftloop.rollout.metrics import Snapshot, delta
from driftloop.rollout.outcomes import OutcomeSource, VersionOutcomes
from driftloop.rollout.router import TrafficRouter
from driftloop.rollout.sources import MetricsSource
from driftloop.rollout.steps import next_phase
from driftloop.rollout.store import Rollout, RolloutStore
from driftloop.rollout.verdicts import (
    STRATEGIES,
    Verdict,
    judged_weights,
    shadow_verdict,
    step_policy,
    step_verdict,
)

__all__ = ["STRATEGIES", "RolloutController", "judged_weights", "step_policy"]

logger = logging.getLogger("driftloop.rollout")


class RolloutController:
    """Runs rollouts of one model through a router, a metrics source and the registry."""

    def __init__(
        self,
        *,
        registry: ModelRegistry,
        router: TrafficRouter,
        metrics: MetricsSource,
        store: RolloutStore,
        config: RolloutConfig,
        clock: Clock | None = None,
        outcomes: OutcomeSource | None = None,
    ) -> None:
        self.registry = registry
        self.router = router
        self.metrics = metrics
        self.store = store
        self.cfg = config
        self.clock = clock or WallClock()
        self.outcomes = outcomes

    @property
    def model(self) -> str:
        return self.registry.model_name

    # -- commands -------------------------------------------------------------------------
    def start(self, version: str, strategy: str | None = None, reason: str = "") -> Rollout:
        """A new rollout of ``version`` (or the unfinished one of the same version)."""
        strategy = strategy or self.cfg.strategy
        judged_weights(self.cfg, strategy)  # validates the name
        candidate = self.registry.get(str(version))
        active = self.store.active(self.model)
        if active is not None and active.version == candidate.version:
            if active.strategy != strategy:
                raise RolloutError(
                    f"rollout #{active.id} of v{active.version} runs as {active.strategy}; "
                    f"abort it first to start a {strategy} rollout"
                )
            return active
        if candidate.gate != "passed":
            raise RolloutError(
                f"v{candidate.version} did not pass its training gate ({candidate.gate}); "
                "only versions that passed can be rolled out"
            )
        champion = self.registry.alias(CHAMPION)
        if champion is None:
            raise RolloutError("there is no champion to compare with: train one first")
        if champion.version == candidate.version:
            raise RolloutError(f"v{candidate.version} is already the champion")
        self.router.current()  # the router must answer before anything is stored or moved
        self.metrics.snapshot()
        why = reason or f"{strategy} rollout of v{candidate.version} against v{champion.version}"
        created = self.store.create(
            self.model, candidate.version, champion.version, strategy, self.clock.now(), why
        )
        crash_point("rollout.created")
        return created

    def abort(self, rollout_id: int, reason: str = "aborted by an operator") -> Rollout:
        """Ask for an abort and apply it now (the running rollout also sees the request)."""
        rollout = self.store.get(rollout_id)
        if rollout.terminal and rollout.applied:
            raise RolloutError(f"rollout #{rollout.id} has already ended ({rollout.label})")
        self.store.request_abort(rollout.id, reason)
        return self.tick(rollout.id)

    def run(self, rollout_id: int, on_tick: Callable[[Rollout], None] | None = None) -> Rollout:
        """Tick until the rollout has ended and its last transition is applied.

        An unreachable router or metrics source is retried every check interval; after
        ``max_duration_s`` of failures in a row the error is raised, the rollout left where
        it stands (resume it with ``start`` or stop it with ``abort`` once it is back).
        """
        failing_since = None
        while True:
            try:
                rollout = self.tick(rollout_id)
                failing_since = None
            except (MetricsUnavailable, RouterError) as exc:
                now = self.clock.now()
                failing_since = failing_since or now
                if (now - failing_since).total_seconds() >= self.cfg.max_duration_s:
                    raise
                logger.warning("rollout #%s: %s; retrying", rollout_id, exc)
                rollout = self._wait(self.store.get(rollout_id), f"{type(exc).__name__}: {exc}")
            if on_tick is not None:
                on_tick(rollout)
            if rollout.terminal and rollout.applied:
                return rollout
            self.clock.sleep(self.cfg.check_interval_s)

    # -- the machine ----------------------------------------------------------------------
    def tick(self, rollout_id: int) -> Rollout:
        """One look: apply what is pending, judge the current phase, maybe transition."""
        r = self.store.get(rollout_id)
        if r.abort_requested and not r.terminal:
            r = self._transition(r, "aborted", r.abort_requested, {})
        if not r.applied:
            r = self._apply(r)
        if r.terminal:
            return r
        if r.state == "pending":
            return self._begin(r)
        if r.phase_started_at is None or r.baseline is None:
            raise RolloutError(f"rollout #{r.id} is applied but has no window; abort it")
        now = self.clock.now()
        baseline = Snapshot.from_json(r.baseline)
        window = delta(self.metrics.snapshot(), baseline)
        elapsed = (now - r.phase_started_at).total_seconds()
        if r.state == "shadow":
            verdict = shadow_verdict(self.cfg, r, window, elapsed)
        else:
            if r.weight >= 100.0:  # blue-green: no stable traffic now, its record before
                window = Snapshot({**window.versions, r.stable: baseline.get(r.stable)})
            task = getattr(self.outcomes, "task", "regression")
            verdict = step_verdict(
                self.cfg, r, window, elapsed, self._outcomes(r), task, self._trigger
            )
        crash_point("rollout.judged")
        return self._act(r, verdict)

    def _act(self, r: Rollout, verdict: Verdict) -> Rollout:
        if verdict.decision == "wait":
            return self._wait(r, verdict.reason, verdict.evidence)
        if verdict.decision == "rollback":
            return self._transition(r, "rolled_back", verdict.reason, verdict.evidence)
        weights = judged_weights(self.cfg, r.strategy)
        phase = next_phase(weights, 0.0 if r.state == "shadow" else r.weight)
        if phase is None:
            return self._transition(r, "promoted", verdict.reason, verdict.evidence, 100.0)
        step, weight = phase
        return self._transition(
            r,
            "step",
            verdict.reason,
            verdict.evidence,
            weight,
            step=step,
            shadow=self._paired(r.strategy, weight),
        )

    def _paired(self, strategy: str, weight: float) -> bool:
        """Whether a step mirrors the champion's requests to the canary (paired evidence)."""
        return self.cfg.paired.enabled and strategy == "canary" and weight < 100.0

    def _wait(self, r: Rollout, reason: str, evidence: Mapping[str, Any] | None = None) -> Rollout:
        """No transition: keep the latest check (for ``status``) and stay."""
        check = {
            "at": self.clock.now().isoformat(),
            "decision": "wait",
            "reason": reason,
            "evidence": dict(evidence or {}),
        }
        return self.store.record_check(r, check)

    def _begin(self, r: Rollout) -> Rollout:
        """Pending: make the version the challenger, have the router load it, first phase."""
        why = f"rollout #{r.id} begins"
        if aliases.set_challenger(
            self.registry, r.version, kind="canary", actor=self._actor(r), reason=why
        ):
            crash_point("rollout.challenger_set")
        live = self.router.reload()
        if live.challenger != r.version:
            raise RouterError(
                f"the router serves challenger {live.challenger!r} after a reload, not "
                f"v{r.version}; check the server's log for a load error"
            )
        if live.champion != r.stable:
            return self._transition(
                r,
                "aborted",
                f"the champion changed to v{live.champion} before the rollout "
                f"began (expected v{r.stable})",
                {},
            )
        if self.cfg.shadow.enabled and r.strategy != "ab":
            return self._transition(
                r, "shadow", "shadow phase: no user sees v" + r.version, {}, 0.0, shadow=True
            )
        return self._act(r, Verdict("next", "started", {}))

    def _transition(
        self,
        r: Rollout,
        state: str,
        reason: str,
        evidence: Mapping[str, Any],
        weight: float = 0.0,
        *,
        step: int = -1,
        shadow: bool = False,
    ) -> Rollout:
        now = self.clock.now()
        moved = self.store.transition(
            r,
            at=now,
            state=state,
            reason=reason,
            evidence=evidence,
            step=step,
            weight=weight,
            shadow=shadow,
        )
        logger.info("rollout #%s: %s -> %s: %s", r.id, r.label, moved.label, reason)
        crash_point(f"rollout.stored.{state}")
        return self._apply(moved)

    def _apply(self, r: Rollout) -> Rollout:
        """Make the router and registry match the stored state (idempotent)."""
        actor = self._actor(r)
        if r.state in ("shadow", "step"):
            live = self.router.current()
            if live.challenger != r.version:
                live = self.router.reload()
            if live.challenger != r.version:
                raise RouterError(
                    f"the router does not serve v{r.version} as challenger (it serves "
                    f"{live.challenger!r}); the rollout cannot set its weight"
                )
            if live.challenger_weight != r.weight or live.shadow != r.shadow:
                self.router.set_weight(r.weight, r.shadow)
                crash_point("rollout.weight_set")
            baseline = self.metrics.snapshot()
            return self.store.mark_applied(r, self.clock.now(), baseline.to_json())
        if r.state == "promoted":
            aliases.promote(self.registry, r.version, actor=actor, reason=r.reason)
            self.router.reload()
        elif r.state in ("rolled_back", "aborted"):
            live = self.router.current()
            if live.challenger == r.version and (live.challenger_weight > 0 or live.shadow):
                self.router.set_weight(0.0, False)  # users first: stop the canary's traffic
            aliases.clear_challenger(self.registry, actor=actor, reason=r.reason, of=r.version)
            self.router.reload()
        return self.store.mark_applied(r, self.clock.now(), None)

    def _actor(self, r: Rollout) -> str:
        return f"driftloop rollout #{r.id}"

    # -- evidence -----------------------------------------------------------------------
    def _outcomes(self, r: Rollout) -> tuple[VersionOutcomes | None, VersionOutcomes | None]:
        if self.outcomes is None or r.phase_started_at is None:
            return None, None
        found = self.outcomes.outcomes(r.phase_started_at)
        return found.get(r.version), found.get(r.stable)

    def _trigger(self, version: str) -> str:
        """Why the loop retrained a version (``driftloop.trigger``: its triggers, or
        ``schedule``); empty for a version it did not retrain."""
        try:
            return str(self.registry.get(version).tags.get("driftloop.trigger") or "")
        except DriftloopError:
            return ""
