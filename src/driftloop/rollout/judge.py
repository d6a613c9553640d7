"""Canary step judge: the spec's gates, relative to the stable, on always-valid tests (pure).

Rules (each a row of the step's evidence; docs/canary.md has them with their reasons):

* **Relative gates.** An absolute threshold (error rate 1 % to promote, 2 % to roll back)
  fails only on evidence: the canary is significantly worse than the stable, or the stable
  itself is under the threshold and the canary is significantly above it. An identical
  canary is never held or rolled back for the stable's own error rate.
* **Latency.** The p99 gates count canary requests slower than ratio x the stable's p99
  and fail when significantly more than 1 % are; a canary share above the stable's own
  p99 significantly over 1 % rolls back at any sample size.
* **Prediction shift.** A sequential chi-square-mixture test on the prediction histograms
  rolls back when the shift is significant and its KL is above ``kl_max`` (a material
  shift shown by evidence); the spec's fixed KL guard stays behind it.
* **Drift-retrain rule** (:data:`DRIFT_RETRAIN_RULE`): a version retrained because the
  world changed is expected to predict differently from the stale stable; its prediction
  shift is judged on delayed labels instead.

The false-rollback budget ``alpha`` of a step is split evenly over three families (error
rate, latency, predictions). Statistics live in :mod:`driftloop.rollout.sequential`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from driftloop.rollout.observation import (
    Evidence,
    StepObservation,
    StepPolicy,
    StepVerdict,
)
from driftloop.rollout.samples import (
    KL_MIN_REQUESTS,
    answer_rate,
    answers,
    judged_kl,
    traffic_detail,
)
from driftloop.rollout.sequential import (
    MeanStats,
    SequentialResult,
    distribution_shift_test,
    error_rate_test,
    exceedance_test,
    mean_difference_test,
    mixture_log_lr,
    proportion_above_test,
)

__all__ = [
    "DRIFT_RETRAIN_RULE",
    "KL_MIN_REQUESTS",
    "Evidence",
    "MeanStats",
    "SequentialResult",
    "StepObservation",
    "StepPolicy",
    "StepVerdict",
    "error_rate_test",
    "exceedance_test",
    "judge_step",
    "mean_difference_test",
    "mixture_log_lr",
]

# Below this many canary requests a 99th percentile is one of the two slowest requests (one
# GC pause or cold cache decides it): the fixed p99 gates wait, the sequential latency test
# judges. At 100 a fraud replay's canary (110 requests in its first hours at 50 %) was rolled
# back on a p99 of 86 ms against 49 ms: its second-slowest request.
P99_MIN_REQUESTS = 300


DRIFT_RETRAIN_RULE = (
    "a version retrained on drift (registry tag driftloop.trigger) predicts differently "
    "from the stale stable on purpose: a prediction KL above kl_max neither rolls back nor "
    "holds it by itself; delayed labels judge it: labelled accuracy worse rolls back, no "
    "labels yet waits (rolled back at the deadline), labels not worse let the other gates "
    "decide"
)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.3g} ms"


@dataclass(frozen=True, slots=True)
class _Tests:
    """The always-valid tests of one look; ``None``: the test does not apply."""

    error: SequentialResult
    error_promote: SequentialResult | None  # canary above promote_error_rate (stable under)
    error_rollback: SequentialResult | None  # canary above rollback_error_rate (stable under)
    latency: SequentialResult
    p99_promote: SequentialResult | None
    p99_rollback: SequentialResult | None
    shift: SequentialResult


def _tests(obs: StepObservation, pol: StepPolicy) -> _Tests:
    n, a = obs.canary_requests, pol.test_alpha
    total, failed = answers(obs, pol)
    error = error_rate_test(
        failed,
        total,
        obs.stable_errors,
        obs.stable_requests,
        alpha=a,
        mixture_sd=pol.error_mixture_sd,
    )
    stable_rate = obs.stable_errors / obs.stable_requests if obs.stable_requests else None

    def above(level: float) -> SequentialResult | None:
        if stable_rate is None or stable_rate >= level:
            return None  # the stable is at or above it: only "no worse than the stable"
        return proportion_above_test(failed, total, level, alpha=a)

    timed = bool(obs.stable_p99_s)  # no stable p99 yet: nothing to count exceedances against

    def slow(count: int | None) -> SequentialResult | None:
        if count is None or not timed:
            return None
        return exceedance_test(
            count,
            n,
            stable_requests=obs.stable_requests,
            alpha=a,
            null_share=pol.latency_null_share,
            mixture_sd=pol.latency_mixture_sd,
        )

    latency = slow(obs.canary_slow) or exceedance_test(0, 0, alpha=a)
    shift = distribution_shift_test(
        obs.canary_predictions or (),
        obs.stable_predictions or (),
        alpha=a,
        divergence_scale=pol.kl_max or 0.1,
    )
    return _Tests(
        error,
        above(pol.promote_error_rate),
        above(pol.rollback_error_rate),
        latency,
        slow(obs.canary_over_promote_p99),
        slow(obs.canary_over_rollback_p99),
        shift,
    )


def _slower(obs: StepObservation, ratio: float, slack_s: float) -> bool:
    """Canary p99 above both ``ratio`` x stable's and stable's + ``slack_s`` (as measured)."""
    if obs.canary_p99_s is None or not obs.stable_p99_s:
        return False
    bound = max(obs.stable_p99_s * ratio, obs.stable_p99_s + slack_s)
    return obs.canary_p99_s > bound


def _p99_fails(
    obs: StepObservation, t: SequentialResult | None, ratio: float, slack_s: float
) -> bool:
    """The p99 gate at ``ratio``: on the counted test when counted, else as measured."""
    if obs.canary_requests < P99_MIN_REQUESTS and t is None:
        return False
    if t is not None:
        return t.decision == "worse"
    return _slower(obs, ratio, slack_s)


def _drift_rule(obs: StepObservation, pol: StepPolicy) -> bool:
    """Whether :data:`DRIFT_RETRAIN_RULE` judges this look's prediction shift."""
    kl = judged_kl(obs)
    return obs.retrained_on_drift and kl is not None and kl > pol.kl_max


def _kl_gate(obs: StepObservation, pol: StepPolicy) -> tuple[bool | None, str]:
    """The fixed KL gate: passed (None: not measured) and why."""
    if _drift_rule(obs, pol):
        return (
            obs.labels_ok,
            f"retrained on drift, judged on labels: {obs.labels_detail or 'none yet'}",
        )
    kl = judged_kl(obs)
    if kl is not None:
        return kl < pol.kl_max, (
            f"above it: {pol.kl_action} once significant or after {pol.guard_min_requests} requests"
        )
    if obs.canary_requests < KL_MIN_REQUESTS:
        return True, (
            f"not judged: below {KL_MIN_REQUESTS} served predictions a KL is sampling noise "
            "(the shift test judges)"
        )
    return None, (
        f"above it: {pol.kl_action} once significant or after {pol.guard_min_requests} requests"
    )


Row = tuple[str, float | None, float, bool | None, str]


def _error_row(obs: StepObservation, pol: StepPolicy, t: _Tests) -> Row:
    """The error-rate gate: no worse than the stable, and under the threshold when it is."""
    n, failed = answers(obs, pol)
    rate = failed / n if n else None
    stable_rate = obs.stable_errors / obs.stable_requests if obs.stable_requests else None
    worse = t.error.decision == "worse" or (
        t.error_promote is not None and t.error_promote.decision == "worse"
    )
    under = ""
    if stable_rate is not None:
        under = f"; stable {stable_rate:.4f}" + (
            " (at or above it: judged against the stable only)"
            if stable_rate >= pol.promote_error_rate
            else ""
        )
    return (
        "error_rate",
        rate,
        pol.promote_error_rate,
        None if rate is None else not worse,
        f"promote unless significantly above {pol.promote_error_rate:g} or the stable"
        f"{under}; rolls back when significantly above {pol.rollback_error_rate:g}",
    )


def _p99_row(obs: StepObservation, pol: StepPolicy, t: _Tests) -> Row:
    """The p99 gate: the canary's p99 against the stable's, with the slack."""
    ratio = (
        obs.canary_p99_s / obs.stable_p99_s
        if obs.canary_p99_s is not None and obs.stable_p99_s
        else None
    )
    counted = t.p99_promote is not None
    few = not counted and obs.canary_requests < P99_MIN_REQUESTS
    p99_ok = (
        True  # not judged: too few served requests for a p99 (the latency test judges)
        if few
        else None
        if ratio is None and not counted
        else not _p99_fails(obs, t.p99_promote, pol.promote_p99_ratio, pol.p99_slack_s)
    )
    how = (
        "counted: canary share slower than ratio x stable p99 tested against 1%; "
        if counted
        else f"not judged: below {P99_MIN_REQUESTS} requests a p99 is the slowest one "
        "(the latency test judges); "
        if few
        else ""
    )
    return (
        "p99_ratio",
        ratio,
        pol.promote_p99_ratio,
        p99_ok,
        how + f"{_ms(obs.canary_p99_s)} vs stable {_ms(obs.stable_p99_s)}; promote needs <= "
        f"{pol.promote_p99_ratio:g}; rolls back above {pol.rollback_p99_ratio:g}"
        + (f"; differences under {_ms(pol.p99_slack_s)} pass" if pol.p99_slack_s else ""),
    )


def _evidence(obs: StepObservation, pol: StepPolicy, t: _Tests) -> dict[str, Evidence]:
    n, _failed = answers(obs, pol)
    kl_ok, kl_note = _kl_gate(obs, pol)
    rows: list[Row] = [
        (
            "canary_requests",
            float(n),
            float(pol.min_requests),
            n >= pol.min_requests,
            traffic_detail(obs, pol),
        ),
        (
            "elapsed_s",
            obs.elapsed_s,
            pol.min_duration_s,
            obs.elapsed_s >= pol.min_duration_s,
            f"deadline at {pol.max_duration_s:g} s",
        ),
        _error_row(obs, pol, t),
        _p99_row(obs, pol, t),
        ("kl", obs.kl, pol.kl_max, kl_ok, f"promote needs < {pol.kl_max:g}; {kl_note}"),
        (
            "error_rate_test",
            t.error.statistic,
            t.error.threshold,
            t.error.decision == "continue",
            f"mSPRT, canary minus stable error rate {t.error.estimate:+.4f}",
        ),
        (
            "latency_test",
            t.latency.statistic,
            t.latency.threshold,
            t.latency.decision == "continue",
            f"mSPRT, canary share above stable p99 minus {pol.latency_null_share:g}: "
            f"{t.latency.estimate:+.4f}",
        ),
        (
            "prediction_shift_test",
            t.shift.statistic,
            t.shift.threshold,
            t.shift.decision == "continue",
            f"chi-square mixture SPRT on prediction bins, shift {t.shift.estimate:.4f} "
            "(about 2 x KL)",
        ),
    ]
    return {row[0]: Evidence(*row) for row in rows}


def _rollback_reason(obs: StepObservation, pol: StepPolicy, t: _Tests) -> str | None:
    """Why the step rolls back now (guards and always-valid tests), or None."""
    n, a = obs.canary_requests, pol.test_alpha
    drift_rule = _drift_rule(obs, pol)
    # a retrain on drift shifts predictions on purpose: no KL rollback at any sample size
    exempt = obs.retrained_on_drift and obs.kl is not None and obs.kl > pol.kl_max
    if drift_rule and obs.labels_ok is False:
        return (
            f"prediction KL {obs.kl:.4f} > {pol.kl_max:g} after a retrain on drift, "
            f"labelled accuracy worse: {obs.labels_detail}"
        )
    if t.error.decision == "worse":
        return f"canary error rate significantly worse than stable (always-valid p <= {a:.3g})"
    if t.error_rollback is not None and t.error_rollback.decision == "worse":
        return (
            f"canary error rate {answer_rate(obs, pol):.4f} significantly above "
            f"{pol.rollback_error_rate:g} (always-valid p <= {a:.3g})"
        )
    if t.latency.decision == "worse":
        return f"canary latency significantly worse than stable (always-valid p <= {a:.3g})"
    if (n >= pol.guard_min_requests or t.p99_rollback is not None) and _p99_fails(
        obs, t.p99_rollback, pol.rollback_p99_ratio, pol.p99_slack_s
    ):
        ratio = (obs.canary_p99_s or 0.0) / (obs.stable_p99_s or 1.0)
        return f"canary p99 is {ratio:.3f}x stable's > {pol.rollback_p99_ratio:g}"
    if pol.kl_action == "rollback" and not exempt and obs.kl is not None and obs.kl > pol.kl_max:
        if t.shift.decision == "worse":
            return (
                f"prediction shift significant (always-valid p <= {a:.3g}) with KL "
                f"{obs.kl:.4f} > {pol.kl_max:g}"
            )
        if n >= pol.guard_min_requests:
            return f"prediction KL {obs.kl:.4f} > {pol.kl_max:g}"
    return None


def judge_step(obs: StepObservation, policy: StepPolicy | None = None) -> StepVerdict:
    """Decide wait, promote or rollback for one step; no canary data is never a rollback.

    Order: the always-valid tests and guards (any sample size), then promotion (traffic,
    duration and all promote gates), then the deadline: past ``max_duration_s`` without
    promotion the step rolls back, the safe side being the stable version.
    """
    pol = policy or StepPolicy()
    tests = _tests(obs, pol)
    ev = _evidence(obs, pol, tests)
    entries = tuple(ev.values())

    def verdict(decision: Literal["wait", "promote", "rollback"], reason: str) -> StepVerdict:
        return StepVerdict(decision, reason, entries)

    why = _rollback_reason(obs, pol, tests)
    if why is not None:
        return verdict("rollback", why)
    gates = ("canary_requests", "elapsed_s", "error_rate", "p99_ratio", "kl")
    drift_rule = _drift_rule(obs, pol)
    if all(ev[g].passed for g in gates):
        if drift_rule:
            return verdict(
                "promote",
                f"all promote gates hold; prediction KL {obs.kl:.4f} "
                f"explained by labelled accuracy ({obs.labels_detail})",
            )
        return verdict("promote", "all promote gates hold")
    total, _ = answers(obs, pol)
    if obs.elapsed_s >= pol.max_duration_s:
        if total < pol.min_requests:
            return verdict("rollback", "deadline passed without enough canary traffic")
        if drift_rule and obs.labels_ok is None:
            return verdict(
                "rollback", f"deadline passed with prediction KL {obs.kl:.4f} unexplained by labels"
            )
        failing = ", ".join(g for g in gates if not ev[g].passed)
        return verdict("rollback", f"deadline passed with promote gates failing: {failing}")
    if total == 0:
        return verdict("wait", "no canary traffic yet")
    if drift_rule and obs.labels_ok is None:
        return verdict(
            "wait",
            f"prediction KL {obs.kl:.4f} > {pol.kl_max:g} after a retrain "
            f"on drift: waiting on labels ({obs.labels_detail})",
        )
    pending = ", ".join(g for g in gates if not ev[g].passed)
    return verdict("wait", f"waiting on: {pending}")
