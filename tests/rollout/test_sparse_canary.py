"""A canary on sparse traffic (one request a day: its 10 % slice sees one in ten days) is
judged on every answer the challenger gives, in its slice and in shadow on the stable's
requests, when ``count_shadow`` is on; the fixed KL gate waits for a sample it can judge."""

from __future__ import annotations

from driftloop.config import RolloutConfig
from driftloop.rollout.judge import KL_MIN_REQUESTS, StepObservation, StepPolicy, judge_step
from driftloop.rollout.verdicts import step_policy

DAY = 86400.0
SPARSE = StepPolicy(
    min_requests=10,
    guard_min_requests=10,
    min_duration_s=0.5 * DAY,
    max_duration_s=60 * DAY,
    count_shadow=True,
)


def _sparse(**changes: object) -> StepObservation:
    """Twelve days at one request a day: one served by the canary, eleven by the stable
    (each also answered by the canary in shadow); a KL of one prediction is meaningless."""
    base: dict[str, object] = {
        "canary_requests": 1,
        "stable_requests": 11,
        "shadow_answers": 11,
        "canary_p99_s": 0.004,
        "stable_p99_s": 0.003,
        "kl": 2.3,
        "elapsed_s": 12 * DAY,
    }
    return StepObservation(**{**base, **changes})  # type: ignore[arg-type]


def _gates(verdict: object) -> dict[str, bool | None]:
    return {e.name: e.passed for e in verdict.evidence}  # type: ignore[attr-defined]


def test_a_sparse_step_counting_shadow_answers_is_promoted_in_days() -> None:
    verdict = judge_step(_sparse(), SPARSE)
    assert (verdict.decision, verdict.reason) == ("promote", "all promote gates hold")
    traffic = next(e for e in verdict.evidence if e.name == "canary_requests")
    assert traffic.value == 12.0 and "1 served, 11 computed in shadow" in traffic.detail
    kl = next(e for e in verdict.evidence if e.name == "kl")
    assert kl.passed and "not judged" in kl.detail


def test_without_shadow_answers_the_same_step_waits_and_misses_its_deadline() -> None:
    policy = StepPolicy(
        min_requests=10,
        guard_min_requests=10,
        min_duration_s=0.5 * DAY,
        max_duration_s=60 * DAY,
    )
    assert judge_step(_sparse(), policy).decision == "wait"
    late = judge_step(_sparse(elapsed_s=60 * DAY), policy)
    assert late.reason == "deadline passed without enough canary traffic"


def test_errors_in_shadow_count_against_the_canary() -> None:
    failing = _sparse(shadow_answers=40, stable_requests=40, shadow_errors=20, elapsed_s=40 * DAY)
    verdict = judge_step(failing, SPARSE)
    assert verdict.decision == "rollback"
    assert "error rate" in verdict.reason
    assert _gates(verdict)["error_rate"] is False


def test_the_fixed_kl_gate_judges_from_its_minimum_of_served_predictions() -> None:
    busy = StepPolicy(min_requests=KL_MIN_REQUESTS - 1, guard_min_requests=5000)
    few = _sparse(canary_requests=KL_MIN_REQUESTS - 1, stable_requests=3000, kl=0.5)
    assert _gates(judge_step(few, busy))["kl"] is True
    enough = _sparse(canary_requests=KL_MIN_REQUESTS, stable_requests=3000, kl=0.5)
    assert _gates(judge_step(enough, busy))["kl"] is False


def test_count_shadow_applies_to_paired_canary_steps_only() -> None:
    on = RolloutConfig.model_validate({"paired": {"count_shadow": True}})
    assert step_policy(on, "canary").count_shadow
    assert not step_policy(on, "blue-green").count_shadow
    unpaired = RolloutConfig.model_validate({"paired": {"enabled": False, "count_shadow": True}})
    assert not step_policy(unpaired, "canary").count_shadow
    assert not step_policy(RolloutConfig(), "canary").count_shadow


def test_a_canary_replacing_a_degraded_stable_counts_its_shadow_answers() -> None:
    """A retrain the loop made because the stable's accuracy was judged degraded on its
    labels is judged on all its answers, not on its 10 % slice alone: a table of 40
    events a day gives the slice 4 a day, 3 days for a step's 12 at 10 %."""
    pace = {"min_duration_s": 0.5 * DAY, "max_duration_s": 20 * DAY}
    cfg = RolloutConfig.model_validate({"min_requests": 12, "guard_min_requests": 12, **pace})
    degraded = step_policy(cfg, "canary", stable_degraded=True)
    assert degraded.count_shadow and not step_policy(cfg, "canary").count_shadow
    assert not step_policy(cfg, "blue-green", stable_degraded=True).count_shadow
    unpaired = cfg.model_copy(update={"paired": cfg.paired.model_copy(update={"enabled": False})})
    assert not step_policy(unpaired, "canary", stable_degraded=True).count_shadow
    first_day = _sparse(canary_requests=4, stable_requests=36, shadow_answers=36, elapsed_s=DAY)
    assert judge_step(first_day, degraded).decision == "promote"
    assert judge_step(first_day, step_policy(cfg, "canary")).decision == "wait"


def test_a_sparse_drift_retrain_is_not_held_on_a_kl_of_one_prediction() -> None:
    """The drift-retrain rule asks labels to explain a KL the gate judges; a KL of one
    served prediction is not judged, and never rolls a drift retrain back."""
    verdict = judge_step(_sparse(retrained_on_drift=True), SPARSE)
    assert (verdict.decision, verdict.reason) == ("promote", "all promote gates hold")
