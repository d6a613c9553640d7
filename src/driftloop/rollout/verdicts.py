"""Judging one phase of a rollout: shadow, a canary or blue-green step, an A/B split.

Pure: a window of metrics, the outcomes and the config in, a :class:`Verdict` out; the
controller (``rollout.controller``) reads the sources, records the verdict and applies it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from driftloop.config import RolloutConfig
from driftloop.config.loop import Trigger
from driftloop.errors import RolloutError
from driftloop.rollout.judge import (
    Evidence,
    MeanStats,
    StepPolicy,
    judge_step,
    mean_difference_test,
)
from driftloop.rollout.metrics import Snapshot, observe_step, shadow_summary
from driftloop.rollout.outcomes import VersionOutcomes, outcome_evidence, paired_evidence
from driftloop.rollout.store import Rollout

# The loop's trigger (config ``loop.triggers``) that means the stable's own labels judged
# its accuracy degraded.
ACCURACY_TRIGGER: Trigger = "accuracy"

__all__ = [
    "STRATEGIES",
    "Verdict",
    "ab_verdict",
    "evidence_json",
    "judged_weights",
    "label_evidence",
    "shadow_verdict",
    "step_policy",
    "step_verdict",
]

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


def step_policy(cfg: RolloutConfig, strategy: str, stable_degraded: bool = False) -> StepPolicy:
    """The judge's policy; the rollout's false-rollback budget is split over its phases.

    ``stable_degraded``: the challenger was retrained because the stable's accuracy was
    judged degraded on its labels. Its paired canary steps then count the answers it
    computes in shadow (as ``paired.count_shadow`` does for sparse traffic): every day at
    10 % keeps most users on a model known to be worse, so a step waits for volume only
    as long as the whole traffic needs to supply it (the guards, ``min_duration_s`` and the
    paired test still judge it)."""
    phases = len(judged_weights(cfg, strategy))
    max_duration = cfg.ab_max_duration_s + 1.0 if strategy == "ab" else cfg.max_duration_s
    return StepPolicy(
        promote_error_rate=cfg.promote_error_rate,
        rollback_error_rate=cfg.rollback_error_rate,
        promote_p99_ratio=cfg.promote_p99_ratio,
        rollback_p99_ratio=cfg.rollback_p99_ratio,
        kl_max=cfg.kl_max,
        kl_action=cfg.kl_action,
        min_requests=cfg.min_requests,
        guard_min_requests=cfg.guard_min_requests,
        min_duration_s=cfg.min_duration_s,
        max_duration_s=max_duration,
        alpha=cfg.alpha / phases,
        p99_slack_s=cfg.p99_slack_ms / 1000.0,
        count_shadow=cfg.paired.enabled
        and (cfg.paired.count_shadow or stable_degraded)
        and strategy == "canary",
    )


def evidence_json(items: tuple[Evidence, ...] | list[Evidence]) -> dict[str, Any]:
    """Evidence rows as the store records them: name -> value, threshold, passed, detail."""
    return {
        e.name: {"value": e.value, "threshold": e.threshold, "passed": e.passed, "detail": e.detail}
        for e in items
    }


@dataclass(frozen=True)
class Verdict:
    """What one look at a phase decided, why, and on what evidence."""

    decision: str  # wait | next (the next phase, or promotion after the last) | rollback
    reason: str
    evidence: dict[str, Any]


def shadow_verdict(config: RolloutConfig, r: Rollout, window: Snapshot, elapsed: float) -> Verdict:
    """The shadow phase: enough answers, few errors, close enough to the champion."""
    cfg = config.shadow
    summary = shadow_summary(window.get(r.version), cfg.agreement_tolerance)
    total = summary.answers + summary.errors
    error_rate = summary.errors / total if total else None
    evidence = evidence_json(
        [
            Evidence(
                "shadow_answers",
                float(total),
                float(cfg.min_answers),
                total >= cfg.min_answers,
                "challenger answers computed in shadow",
            ),
            Evidence(
                "shadow_error_rate",
                error_rate,
                cfg.max_error_rate,
                None if error_rate is None else error_rate <= cfg.max_error_rate,
                "failed shadow answers",
            ),
            Evidence(
                "agreement",
                summary.agreement,
                cfg.min_agreement,
                None if summary.agreement is None else summary.agreement >= cfg.min_agreement,
                f"share within {cfg.agreement_tolerance:g} (relative) of the champion; "
                f"median divergence {summary.median_divergence}",
            ),
        ]
    )
    if total < cfg.min_answers:
        if elapsed >= config.max_duration_s:
            return Verdict(
                "rollback",
                f"shadow deadline passed with {total} of {cfg.min_answers} answers",
                evidence,
            )
        return Verdict("wait", f"shadow answers {total} of {cfg.min_answers}", evidence)
    if error_rate is not None and error_rate > cfg.max_error_rate:
        return Verdict(
            "rollback", f"shadow error rate {error_rate:.4f} > {cfg.max_error_rate:g}", evidence
        )
    if summary.agreement is not None and summary.agreement < cfg.min_agreement:
        return Verdict(
            "rollback",
            f"shadow agreement {summary.agreement:.3f} < {cfg.min_agreement:g}",
            evidence,
        )
    agreement = "not measured" if summary.agreement is None else f"{summary.agreement:.4f}"
    return Verdict("next", f"shadow passed: {total} answers, agreement {agreement}", evidence)


def label_evidence(
    cfg: RolloutConfig,
    task: str,
    r: Rollout,
    canary: VersionOutcomes | None,
    stable: VersionOutcomes | None,
) -> tuple[list[Evidence], Evidence, Evidence]:
    """Outcome evidence rows, the business gate, and the accuracy verdict: the paired
    test when it has decided, else the canary slice's labels against the stable's."""
    business, accuracy = outcome_evidence(canary, stable, cfg.outcomes, task)
    rows = [business, accuracy]
    if cfg.paired.enabled:
        paired, _ = paired_evidence(canary, r.stable, cfg.paired, task)
        rows.append(paired)
        if paired.passed is not None:
            accuracy = paired
    return rows, business, accuracy


def step_verdict(
    cfg: RolloutConfig,
    r: Rollout,
    window: Snapshot,
    elapsed: float,
    outcomes: tuple[VersionOutcomes | None, VersionOutcomes | None],
    task: str,
    trigger: Callable[[str], str],
) -> Verdict:
    """A judged step (canary, blue-green, A/B): the judge's guards and tests, then the
    labels (paired when they have decided) and, in A/B, the business outcome.

    ``trigger``: what made the loop retrain a version (its ``driftloop.trigger`` tag, empty
    for a version the loop did not retrain)."""
    why = trigger(r.version)
    policy = step_policy(cfg, r.strategy, stable_degraded=ACCURACY_TRIGGER in why.split(", "))
    ratios = (policy.promote_p99_ratio, policy.rollback_p99_ratio)
    obs = observe_step(window, r.version, r.stable, elapsed, policy.p99_slack_s, ratios)
    canary_out, stable_out = outcomes
    rows, business, accuracy = label_evidence(cfg, task, r, canary_out, stable_out)
    if obs.kl is not None and obs.kl > policy.kl_max and why:
        obs = replace(
            obs, retrained_on_drift=True, labels_ok=accuracy.passed, labels_detail=accuracy.detail
        )
    verdict = judge_step(obs, policy)  # the drift-retrain rule is the judge's (see judge)
    evidence = evidence_json([*verdict.evidence, *rows])
    if accuracy.name == "paired_loss" and accuracy.passed is False:
        return Verdict(
            "rollback",
            f"paired labels: canary loss significantly higher "
            f"than the stable's ({accuracy.detail})",
            evidence,
        )
    if r.strategy == "ab":
        return ab_verdict(
            cfg, verdict.decision, verdict.reason, evidence, canary_out, stable_out, elapsed
        )
    if verdict.decision == "promote":
        failing = [e.name for e in (business, accuracy) if e.passed is False]
        if not failing:
            return Verdict("next", verdict.reason, evidence)
        if elapsed >= policy.max_duration_s:
            return Verdict(
                "rollback", f"deadline passed with {', '.join(failing)} failing", evidence
            )
        return Verdict("wait", f"waiting on: {', '.join(failing)}", evidence)
    return Verdict(verdict.decision, verdict.reason, evidence)


def ab_verdict(
    config: RolloutConfig,
    decision: str,
    reason: str,
    evidence: dict[str, Any],
    canary: VersionOutcomes | None,
    stable: VersionOutcomes | None,
    elapsed: float,
) -> Verdict:
    """A/B: hold the split until the always-valid test of the business outcome decides."""
    if decision == "rollback":  # the canary's guards and sequential tests hold in A/B too
        return Verdict("rollback", reason, evidence)
    cfg = config.outcomes
    empty = MeanStats(0, 0.0, 0.0)
    a = canary.business if canary else empty
    b = stable.business if stable else empty
    test = mean_difference_test(a, b, alpha=config.ab_alpha)
    evidence["ab_test"] = {
        "value": test.statistic,
        "threshold": test.threshold,
        "passed": None if test.decision == "continue" else True,
        "detail": f"always-valid two-sided test of mean {cfg.business_metric}: challenger "
        f"{a.mean:.4g} (n={a.n}) minus champion {b.mean:.4g} (n={b.n}) = "
        f"{test.estimate:+.4g}, p <= {test.p_value:.4g}",
    }
    enough = a.n >= cfg.min_outcomes and b.n >= cfg.min_outcomes
    if test.decision == "worse" and enough:
        challenger_better = (test.estimate > 0) == cfg.higher_is_better
        if challenger_better:
            return Verdict(
                "next",
                f"challenger wins the A/B test on {cfg.business_metric} (p <= {test.p_value:.3g})",
                evidence,
            )
        return Verdict(
            "rollback",
            f"champion wins the A/B test on {cfg.business_metric} (p <= {test.p_value:.3g})",
            evidence,
        )
    if elapsed >= config.ab_max_duration_s:
        return Verdict(
            "rollback", "A/B test inconclusive at its deadline: the champion stays", evidence
        )
    return Verdict(
        "wait",
        f"A/B test: no significant difference yet ({a.n} and {b.n} {cfg.business_metric} outcomes)",
        evidence,
    )
