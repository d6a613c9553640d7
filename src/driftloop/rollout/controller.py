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
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from driftloop.clock import Clock, WallClock
from driftloop.config import RolloutConfig
from driftloop.errors import DriftloopError, MetricsUnavailable, RolloutError, RouterError
from driftloop.faults import crash_point
from driftloop.registry.base import CHALLENGER, CHAMPION, ModelRegistry
from driftloop.rollout.judge import (
    Evidence,
    MeanStats,
    StepPolicy,
    judge_step,
    mean_difference_test,
)
from driftloop.rollout.metrics import Snapshot, delta, observe_step, shadow_summary
from driftloop.rollout.outcomes import (
    OutcomeSource,
    VersionOutcomes,
    outcome_evidence,
    paired_evidence,
)
from driftloop.rollout.router import TrafficRouter
from driftloop.rollout.sources import MetricsSource
from driftloop.rollout.steps import next_phase
from driftloop.rollout.store import Rollout, RolloutStore

__all__ = ["STRATEGIES", "RolloutController", "judged_weights", "step_policy"]

logger = logging.getLogger("driftloop.rollout")
STRATEGIES = ("canary", "blue-green", "ab")


def judged_weights(cfg: RolloutConfig, strategy: str) -> tuple[float, ...]:
    """The weights a strategy holds and judges, in order."""
    if strategy == "canary":
        return cfg.steps[:-1] if len(cfg.steps) > 1 else cfg.steps
    if strategy == "blue-green":
        return (100.0,)
    if strategy == "ab":
        return (cfg.ab_split,)
    raise RolloutError(f"strategy {strategy!r} must be one of {', '.join(STRATEGIES)}")


def step_policy(cfg: RolloutConfig, strategy: str) -> StepPolicy:
    """The judge's policy; the rollout's false-rollback budget is split over its phases."""
    phases = len(judged_weights(cfg, strategy))
    max_duration = cfg.ab_max_duration_s + 1.0 if strategy == "ab" else cfg.max_duration_s
    return StepPolicy(
        promote_error_rate=cfg.promote_error_rate, rollback_error_rate=cfg.rollback_error_rate,
        promote_p99_ratio=cfg.promote_p99_ratio, rollback_p99_ratio=cfg.rollback_p99_ratio,
        kl_max=cfg.kl_max, kl_action=cfg.kl_action, min_requests=cfg.min_requests,
        guard_min_requests=cfg.guard_min_requests, min_duration_s=cfg.min_duration_s,
        max_duration_s=max_duration, alpha=cfg.alpha / phases,
        p99_slack_s=cfg.p99_slack_ms / 1000.0,
    )  # fmt: skip


def _evidence_json(items: tuple[Evidence, ...] | list[Evidence]) -> dict[str, Any]:
    return {
        e.name: {"value": e.value, "threshold": e.threshold, "passed": e.passed, "detail": e.detail}
        for e in items
    }


@dataclass(frozen=True)
class _Verdict:
    decision: str  # wait | next (the next phase, or promotion after the last) | rollback
    reason: str
    evidence: dict[str, Any]


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
            verdict = self._judge_shadow(r, window, elapsed)
        else:
            if r.weight >= 100.0:  # blue-green: no stable traffic now, its record before
                window = Snapshot({**window.versions, r.stable: baseline.get(r.stable)})
            verdict = self._judge_step(r, window, elapsed)
        crash_point("rollout.judged")
        return self._act(r, verdict)

    def _act(self, r: Rollout, verdict: _Verdict) -> Rollout:
        if verdict.decision == "wait":
            return self._wait(r, verdict.reason, verdict.evidence)
        if verdict.decision == "rollback":
            return self._transition(r, "rolled_back", verdict.reason, verdict.evidence)
        weights = judged_weights(self.cfg, r.strategy)
        phase = next_phase(weights, 0.0 if r.state == "shadow" else r.weight)
        if phase is None:
            return self._transition(r, "promoted", verdict.reason, verdict.evidence, 100.0)
        step, weight = phase
        return self._transition(r, "step", verdict.reason, verdict.evidence, weight, step=step,
                                shadow=self._paired(r.strategy, weight))  # fmt: skip

    def _paired(self, strategy: str, weight: float) -> bool:
        """Whether a step mirrors the champion's requests to the canary (paired evidence)."""
        return self.cfg.paired.enabled and strategy == "canary" and weight < 100.0

    def _wait(self, r: Rollout, reason: str, evidence: Mapping[str, Any] | None = None) -> Rollout:
        """No transition: keep the latest check (for ``status``) and stay."""
        check = {"at": self.clock.now().isoformat(), "decision": "wait", "reason": reason,
                 "evidence": dict(evidence or {})}  # fmt: skip
        return self.store.record_check(r, check)

    def _begin(self, r: Rollout) -> Rollout:
        """Pending: make the version the challenger, have the router load it, first phase."""
        challenger = self.registry.alias(CHALLENGER)
        if challenger is None or challenger.version != r.version:
            self.registry.move_alias(
                CHALLENGER, r.version, "canary", self._actor(r), f"rollout #{r.id} begins"
            )
            crash_point("rollout.challenger_set")
        live = self.router.reload()
        if live.challenger != r.version:
            raise RouterError(
                f"the router serves challenger {live.challenger!r} after a reload, not "
                f"v{r.version}; check the server's log for a load error"
            )
        if live.champion != r.stable:
            return self._transition(
                r, "aborted", f"the champion changed to v{live.champion} before the rollout "
                f"began (expected v{r.stable})", {},
            )  # fmt: skip
        if self.cfg.shadow.enabled and r.strategy != "ab":
            return self._transition(r, "shadow", "shadow phase: no user sees v" + r.version,
                                    {}, 0.0, shadow=True)  # fmt: skip
        return self._act(r, _Verdict("next", "started", {}))

    def _transition(
        self, r: Rollout, state: str, reason: str, evidence: Mapping[str, Any],
        weight: float = 0.0, *, step: int = -1, shadow: bool = False,
    ) -> Rollout:  # fmt: skip
        now = self.clock.now()
        moved = self.store.transition(r, at=now, state=state, reason=reason, evidence=evidence,
                                      step=step, weight=weight, shadow=shadow)  # fmt: skip
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
            champion = self.registry.alias(CHAMPION)
            if champion is None or champion.version != r.version:
                self.registry.move_alias(CHAMPION, r.version, "promote", actor, r.reason)
                crash_point("rollout.champion_moved")
            challenger = self.registry.alias(CHALLENGER)
            if challenger is not None and challenger.version == r.version:
                self.registry.move_alias(CHALLENGER, None, "clear", actor, f"v{r.version} promoted")
            self.router.reload()
        elif r.state in ("rolled_back", "aborted"):
            live = self.router.current()
            if live.challenger == r.version and (live.challenger_weight > 0 or live.shadow):
                self.router.set_weight(0.0, False)  # users first: stop the canary's traffic
            challenger = self.registry.alias(CHALLENGER)
            if challenger is not None and challenger.version == r.version:
                self.registry.move_alias(CHALLENGER, None, "clear", actor, r.reason)
            self.router.reload()
        return self.store.mark_applied(r, self.clock.now(), None)

    def _actor(self, r: Rollout) -> str:
        return f"driftloop rollout #{r.id}"

    # -- judging --------------------------------------------------------------------------
    def _judge_shadow(self, r: Rollout, window: Snapshot, elapsed: float) -> _Verdict:
        cfg = self.cfg.shadow
        summary = shadow_summary(window.get(r.version), cfg.agreement_tolerance)
        total = summary.answers + summary.errors
        error_rate = summary.errors / total if total else None
        evidence = _evidence_json([
            Evidence("shadow_answers", float(total), float(cfg.min_answers),
                     total >= cfg.min_answers, "challenger answers computed in shadow"),
            Evidence("shadow_error_rate", error_rate, cfg.max_error_rate,
                     None if error_rate is None else error_rate <= cfg.max_error_rate,
                     "failed shadow answers"),
            Evidence("agreement", summary.agreement, cfg.min_agreement,
                     None if summary.agreement is None
                     else summary.agreement >= cfg.min_agreement,
                     f"share within {cfg.agreement_tolerance:g} (relative) of the champion; "
                     f"median divergence {summary.median_divergence}"),
        ])  # fmt: skip
        if total < cfg.min_answers:
            if elapsed >= self.cfg.max_duration_s:
                return _Verdict("rollback", f"shadow deadline passed with {total} of "
                                f"{cfg.min_answers} answers", evidence)  # fmt: skip
            return _Verdict("wait", f"shadow answers {total} of {cfg.min_answers}", evidence)
        if error_rate is not None and error_rate > cfg.max_error_rate:
            return _Verdict("rollback", f"shadow error rate {error_rate:.4f} > "
                            f"{cfg.max_error_rate:g}", evidence)  # fmt: skip
        if summary.agreement is not None and summary.agreement < cfg.min_agreement:
            return _Verdict("rollback", f"shadow agreement {summary.agreement:.3f} < "
                            f"{cfg.min_agreement:g}", evidence)  # fmt: skip
        agreement = "not measured" if summary.agreement is None else f"{summary.agreement:.4f}"
        return _Verdict("next", f"shadow passed: {total} answers, agreement {agreement}",
                        evidence)  # fmt: skip

    def _outcomes(self, r: Rollout) -> tuple[VersionOutcomes | None, VersionOutcomes | None]:
        if self.outcomes is None or r.phase_started_at is None:
            return None, None
        found = self.outcomes.outcomes(r.phase_started_at)
        return found.get(r.version), found.get(r.stable)

    def _retrained_on_drift(self, version: str) -> bool:
        """A version the loop retrained because the world changed (``driftloop.trigger``)."""
        try:
            return bool(self.registry.get(version).tags.get("driftloop.trigger"))
        except DriftloopError:
            return False

    def _labels(
        self, r: Rollout, canary: VersionOutcomes | None, stable: VersionOutcomes | None
    ) -> tuple[list[Evidence], Evidence, Evidence]:
        """Outcome evidence rows, the business gate, and the accuracy verdict: the paired
        test when it has decided, else the canary slice's labels against the stable's."""
        task = getattr(self.outcomes, "task", "regression")
        business, accuracy = outcome_evidence(canary, stable, self.cfg.outcomes, task)
        rows = [business, accuracy]
        if self.cfg.paired.enabled:
            paired, _ = paired_evidence(canary, r.stable, self.cfg.paired, task)
            rows.append(paired)
            if paired.passed is not None:
                accuracy = paired
        return rows, business, accuracy

    def _judge_step(self, r: Rollout, window: Snapshot, elapsed: float) -> _Verdict:
        policy = step_policy(self.cfg, r.strategy)
        ratios = (policy.promote_p99_ratio, policy.rollback_p99_ratio)
        obs = observe_step(window, r.version, r.stable, elapsed, policy.p99_slack_s, ratios)
        canary_out, stable_out = self._outcomes(r)
        rows, business, accuracy = self._labels(r, canary_out, stable_out)
        if obs.kl is not None and obs.kl > policy.kl_max and self._retrained_on_drift(r.version):
            obs = replace(obs, retrained_on_drift=True, labels_ok=accuracy.passed,
                          labels_detail=accuracy.detail)  # fmt: skip
        verdict = judge_step(obs, policy)  # the drift-retrain rule is the judge's (see judge)
        evidence = _evidence_json([*verdict.evidence, *rows])
        if accuracy.name == "paired_loss" and accuracy.passed is False:
            return _Verdict("rollback", f"paired labels: canary loss significantly higher "
                            f"than the stable's ({accuracy.detail})", evidence)  # fmt: skip
        if r.strategy == "ab":
            return self._judge_ab(verdict.decision, verdict.reason, evidence, canary_out,
                                  stable_out, elapsed)  # fmt: skip
        if verdict.decision == "promote":
            failing = [e.name for e in (business, accuracy) if e.passed is False]
            if not failing:
                return _Verdict("next", verdict.reason, evidence)
            if elapsed >= policy.max_duration_s:
                return _Verdict(
                    "rollback", f"deadline passed with {', '.join(failing)} failing", evidence
                )
            return _Verdict("wait", f"waiting on: {', '.join(failing)}", evidence)
        return _Verdict(verdict.decision, verdict.reason, evidence)

    def _judge_ab(
        self, decision: str, reason: str, evidence: dict[str, Any],
        canary: VersionOutcomes | None, stable: VersionOutcomes | None, elapsed: float,
    ) -> _Verdict:  # fmt: skip
        if decision == "rollback":  # the canary's guards and sequential tests hold in A/B too
            return _Verdict("rollback", reason, evidence)
        cfg = self.cfg.outcomes
        empty = MeanStats(0, 0.0, 0.0)
        a = canary.business if canary else empty
        b = stable.business if stable else empty
        test = mean_difference_test(a, b, alpha=self.cfg.ab_alpha)
        evidence["ab_test"] = {
            "value": test.statistic, "threshold": test.threshold,
            "passed": None if test.decision == "continue" else True,
            "detail": f"always-valid two-sided test of mean {cfg.business_metric}: challenger "
            f"{a.mean:.4g} (n={a.n}) minus champion {b.mean:.4g} (n={b.n}) = "
            f"{test.estimate:+.4g}, p <= {test.p_value:.4g}",
        }  # fmt: skip
        enough = a.n >= cfg.min_outcomes and b.n >= cfg.min_outcomes
        if test.decision == "worse" and enough:
            challenger_better = (test.estimate > 0) == cfg.higher_is_better
            if challenger_better:
                return _Verdict("next", f"challenger wins the A/B test on {cfg.business_metric}"
                                f" (p <= {test.p_value:.3g})", evidence)  # fmt: skip
            return _Verdict("rollback", f"champion wins the A/B test on {cfg.business_metric} "
                            f"(p <= {test.p_value:.3g})", evidence)  # fmt: skip
        if elapsed >= self.cfg.ab_max_duration_s:
            return _Verdict("rollback", "A/B test inconclusive at its deadline: the champion "
                            "stays", evidence)  # fmt: skip
        return _Verdict("wait", f"A/B test: no significant difference yet ({a.n} and {b.n} "
                        f"{cfg.business_metric} outcomes)", evidence)  # fmt: skip
