"""Canary step judge: always-valid sequential tests plus the spec's gates (pure, no I/O).

The sequential tests are one-sided mixture sequential probability ratio tests (mSPRT) in the
normal-approximation form of Johari, Koomen, Pekelis and Walsh, "Always Valid Inference:
Continuous Monitoring of A/B Tests", Operations Research 70(3), 2022 (arXiv:1512.04922),
section 4: the estimated difference ``d`` with variance ``v`` is treated as Gaussian and the
likelihood ratio against ``d = 0`` is mixed over a half-normal prior ``|N(0, tau^2)|`` on
positive differences, which has the closed form

    Lambda = 2 sqrt(v / (v + tau^2)) exp(d^2 tau^2 / (2 v (v + tau^2)))
             Phi(d tau / sqrt(v (v + tau^2))).

Lambda is a nonnegative supermartingale under "canary not worse" (d <= 0), so by Ville's
inequality P(Lambda ever >= 1/alpha) <= alpha however often it is checked; 1/Lambda is the
always-valid p-value of the current look. The variance is the pooled (null) binomial one and
the canary count gets a continuity correction of -0.5: with few errors the binomial is
right-skewed, and without it the false-positive rate reached ~alpha x 1.2 in simulation
(1% errors, 20 canary requests a look); with it ~alpha x 0.6. The tests check the rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from scipy.special import log_ndtr

__all__ = [
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

_MAX_LOG = 700.0


# Below this many canary requests a 99th percentile is one of the two slowest requests (one
# GC pause or cold cache decides it): the fixed p99 gates wait, the sequential latency test
# judges. At 100 a fraud replay's canary (110 requests in its first hours at 50 %) was rolled
# back on a p99 of 86 ms against 49 ms: its second-slowest request.
P99_MIN_REQUESTS = 300


@dataclass(frozen=True, slots=True)
class SequentialResult:
    """One look of a one-sided mSPRT: estimate, mixture likelihood ratio, threshold, decision."""

    estimate: float
    statistic: float
    threshold: float
    p_value: float
    decision: Literal["continue", "worse"]


def mixture_log_lr(diff: float, variance: float, mixture_sd: float) -> float:
    """Log of the half-normal-mixture likelihood ratio for a Gaussian estimate ``diff``."""
    if not mixture_sd > 0.0:
        raise ValueError(f"mixture_sd must be > 0, got {mixture_sd!r}")
    if not variance > 0.0:
        return 0.0
    tau2 = mixture_sd * mixture_sd
    total = variance + tau2
    quad = diff * diff * tau2 / (2.0 * variance * total)
    z = diff * mixture_sd / math.sqrt(variance * total)
    return math.log(2.0) + 0.5 * math.log(variance / total) + quad + float(log_ndtr(z))


def _result(
    diff: float, variance: float, alpha: float, mixture_sd: float, correction: float = 0.0
) -> SequentialResult:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be within (0, 1), got {alpha!r}")
    log_lr = mixture_log_lr(diff - correction, variance, mixture_sd)
    statistic = math.exp(min(log_lr, _MAX_LOG))
    threshold = 1.0 / alpha
    decision: Literal["continue", "worse"] = "worse" if statistic >= threshold else "continue"
    return SequentialResult(diff, statistic, threshold, min(1.0, 1.0 / statistic), decision)


def _check_count(name: str, count: int, total_name: str, total: int) -> None:
    if total < 0:
        raise ValueError(f"{total_name} must be >= 0, got {total!r}")
    if not 0 <= count <= total:
        raise ValueError(f"{name} must be within [0, {total_name}={total}], got {count!r}")


def error_rate_test(
    canary_errors: int,
    canary_requests: int,
    stable_errors: int,
    stable_requests: int,
    *,
    alpha: float = 0.05,
    mixture_sd: float = 0.02,
) -> SequentialResult:
    """Always-valid test that the canary's error rate exceeds the stable's (cumulative counts)."""
    _check_count("canary_errors", canary_errors, "canary_requests", canary_requests)
    _check_count("stable_errors", stable_errors, "stable_requests", stable_requests)
    if canary_requests == 0 or stable_requests == 0:
        return _result(0.0, 0.0, alpha, mixture_sd)
    diff = canary_errors / canary_requests - stable_errors / stable_requests
    pooled = (canary_errors + stable_errors) / (canary_requests + stable_requests)
    variance = pooled * (1.0 - pooled) * (1.0 / canary_requests + 1.0 / stable_requests)
    return _result(diff, variance, alpha, mixture_sd, 0.5 / canary_requests)


def exceedance_test(
    canary_slow: int,
    canary_requests: int,
    *,
    stable_requests: int | None = None,
    null_share: float = 0.01,
    alpha: float = 0.05,
    mixture_sd: float = 0.05,
    min_stable_tail: float = 10.0,
    min_canary_tail: float = 2.0,
) -> SequentialResult:
    """Always-valid test that more than ``null_share`` of canary requests exceed stable's p99.

    Under identical versions the share is ``null_share`` (0.01 for a p99). If the p99 was
    estimated from ``stable_requests`` requests, its sampling noise is added to the variance
    as ``null_share (1 - null_share) / stable_requests``, and the test says "continue" until
    ``stable_requests * null_share >= min_stable_tail`` and
    ``canary_requests * null_share >= min_canary_tail``: with fewer the p99 and the canary
    count are too noisy and skewed for the Gaussian approximation. Simulated A/A at alpha
    0.0025: 6/400 false positives at a 10/90 split and 13/400 at 50/50 without the stable
    floor; with both floors 1/1000 at 10/90 and 4/1000 at 50/50 (still ~1.6x alpha there).
    """
    _check_count("canary_slow", canary_slow, "canary_requests", canary_requests)
    if not 0.0 < null_share < 1.0:
        raise ValueError(f"null_share must be within (0, 1), got {null_share!r}")
    if stable_requests is not None and stable_requests < 0:
        raise ValueError(f"stable_requests must be >= 0, got {stable_requests!r}")
    if canary_requests * null_share < min_canary_tail or (
        stable_requests is not None and stable_requests * null_share < min_stable_tail
    ):
        return _result(0.0, 0.0, alpha, mixture_sd)
    inverse_n = 1.0 / canary_requests + (1.0 / stable_requests if stable_requests else 0.0)
    variance = null_share * (1.0 - null_share) * inverse_n
    diff = canary_slow / canary_requests - null_share
    return _result(diff, variance, alpha, mixture_sd, 0.5 / canary_requests)


def _finite_nonneg(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class StepObservation:
    """Cumulative canary and stable measurements for the current step's window."""

    canary_requests: int = 0
    canary_errors: int = 0
    stable_requests: int = 0
    stable_errors: int = 0
    canary_slow: int = 0  # canary requests slower than stable_p99_s
    canary_p99_s: float | None = None
    stable_p99_s: float | None = None
    kl: float | None = None  # KL(canary predictions || stable predictions)
    elapsed_s: float = 0.0

    def __post_init__(self) -> None:
        _check_count("canary_errors", self.canary_errors, "canary_requests", self.canary_requests)
        _check_count("stable_errors", self.stable_errors, "stable_requests", self.stable_requests)
        _check_count("canary_slow", self.canary_slow, "canary_requests", self.canary_requests)
        for name in ("canary_p99_s", "stable_p99_s", "kl", "elapsed_s"):
            _finite_nonneg(name, getattr(self, name))


@dataclass(frozen=True, slots=True)
class StepPolicy:
    """Gates with the specification's defaults, traffic and time bounds, and the test budget.

    ``alpha`` is the false-rollback budget of one step on identical versions, split evenly
    between the error-rate and latency sequential tests. ``kl_action`` says whether a KL above
    ``kl_max`` (once ``guard_min_requests`` are in) rolls back or only holds promotion.
    """

    promote_error_rate: float = 0.01
    rollback_error_rate: float = 0.02
    promote_p99_ratio: float = 1.10
    rollback_p99_ratio: float = 1.20
    p99_slack_s: float = 0.0  # latency differences up to this are never judged
    kl_max: float = 0.1
    kl_action: Literal["rollback", "hold"] = "rollback"
    min_requests: int = 2000
    guard_min_requests: int = 1000
    min_duration_s: float = 300.0
    max_duration_s: float = 1800.0
    alpha: float = 0.05
    error_mixture_sd: float = 0.02
    latency_mixture_sd: float = 0.05
    latency_null_share: float = 0.01

    def __post_init__(self) -> None:
        for name in ("promote_error_rate", "rollback_error_rate", "latency_null_share"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be within (0, 1), got {value!r}")
        if self.rollback_error_rate < self.promote_error_rate:
            raise ValueError(
                f"rollback_error_rate must be >= {self.promote_error_rate}, got "
                f"{self.rollback_error_rate!r}"
            )
        if not 1.0 <= self.promote_p99_ratio <= self.rollback_p99_ratio:
            raise ValueError(
                f"promote_p99_ratio must be within [1, rollback_p99_ratio], got "
                f"{self.promote_p99_ratio!r}"
            )
        for name in ("kl_max", "error_mixture_sd", "latency_mixture_sd", "min_duration_s",
                     "p99_slack_s"):  # fmt: skip
            _finite_nonneg(name, getattr(self, name))
        if self.kl_action not in ("rollback", "hold"):
            raise ValueError(f"kl_action must be 'rollback' or 'hold', got {self.kl_action!r}")
        for name in ("min_requests", "guard_min_requests"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not self.max_duration_s > self.min_duration_s:
            raise ValueError(
                f"max_duration_s must be > min_duration_s={self.min_duration_s}, "
                f"got {self.max_duration_s!r}"
            )
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be within (0, 1), got {self.alpha!r}")


@dataclass(frozen=True, slots=True)
class Evidence:
    """One check: its value, threshold, whether it passed (None: not measured yet), detail."""

    name: str
    value: float | None
    threshold: float
    passed: bool | None
    detail: str


@dataclass(frozen=True, slots=True)
class StepVerdict:
    """The step's decision, the evidence behind it and a one-line reason."""

    decision: Literal["wait", "promote", "rollback"]
    reason: str
    evidence: tuple[Evidence, ...]


def _slower(obs: StepObservation, ratio: float, slack_s: float) -> bool:
    """Canary p99 above both ``ratio`` x stable's and stable's + ``slack_s``."""
    if obs.canary_p99_s is None or not obs.stable_p99_s:
        return False
    bound = max(obs.stable_p99_s * ratio, obs.stable_p99_s + slack_s)
    return obs.canary_p99_s > bound


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.3g} ms"


def _evidence(obs: StepObservation, policy: StepPolicy) -> dict[str, Evidence]:
    n, pol = obs.canary_requests, policy
    rate = obs.canary_errors / n if n else None
    ratio = None
    if obs.canary_p99_s is not None and obs.stable_p99_s:
        ratio = obs.canary_p99_s / obs.stable_p99_s
    err = error_rate_test(obs.canary_errors, n, obs.stable_errors, obs.stable_requests,
                          alpha=pol.alpha / 2, mixture_sd=pol.error_mixture_sd)  # fmt: skip
    timed = bool(obs.stable_p99_s)  # no stable p99 yet: nothing to count exceedances against
    slow = exceedance_test(obs.canary_slow if timed else 0, n if timed else 0,
                           stable_requests=obs.stable_requests, alpha=pol.alpha / 2,
                           null_share=pol.latency_null_share,
                           mixture_sd=pol.latency_mixture_sd)  # fmt: skip
    guard = f"; rolls back above {{:g}} after {pol.guard_min_requests} requests"
    rows: list[tuple[str, float | None, float, bool | None, str]] = [
        ("canary_requests", float(n), float(pol.min_requests), n >= pol.min_requests,
         "canary requests this step"),
        ("elapsed_s", obs.elapsed_s, pol.min_duration_s, obs.elapsed_s >= pol.min_duration_s,
         f"deadline at {pol.max_duration_s:g} s"),
        ("error_rate", rate, pol.promote_error_rate,
         None if rate is None else rate < pol.promote_error_rate,
         f"promote needs < {pol.promote_error_rate:g}" + guard.format(pol.rollback_error_rate)),
        ("p99_ratio", ratio, pol.promote_p99_ratio,
         None if ratio is None else (n < P99_MIN_REQUESTS
                                     or not _slower(obs, pol.promote_p99_ratio, pol.p99_slack_s)),
         (f"not judged: below {P99_MIN_REQUESTS} requests a p99 is the slowest one (the "
          "latency test judges); " if n < P99_MIN_REQUESTS else "")
         + f"{_ms(obs.canary_p99_s)} vs stable {_ms(obs.stable_p99_s)}; promote needs <= "
         f"{pol.promote_p99_ratio:g}" + guard.format(pol.rollback_p99_ratio)
         + (f"; differences under {_ms(pol.p99_slack_s)} pass" if pol.p99_slack_s else "")),
        ("kl", obs.kl, pol.kl_max, None if obs.kl is None else obs.kl < pol.kl_max,
         f"promote needs < {pol.kl_max:g}; above it: {pol.kl_action} after "
         f"{pol.guard_min_requests} requests"),
        ("error_rate_test", err.statistic, err.threshold, err.decision == "continue",
         f"mSPRT, canary minus stable error rate {err.estimate:+.4f}"),
        ("latency_test", slow.statistic, slow.threshold, slow.decision == "continue",
         f"mSPRT, canary share above stable p99 minus {pol.latency_null_share:g}: "
         f"{slow.estimate:+.4f}"),
    ]  # fmt: skip
    return {row[0]: Evidence(*row) for row in rows}


def judge_step(obs: StepObservation, policy: StepPolicy | None = None) -> StepVerdict:
    """Decide wait, promote or rollback for one step; no canary data is never a rollback.

    Order: hard guards (spec thresholds, once ``guard_min_requests`` canary requests are in),
    then the always-valid tests ("worse" rolls back at any sample size), then promotion
    (traffic, duration and all promote gates), then the deadline: past ``max_duration_s``
    without promotion the step rolls back, the safe side being the stable version.
    """
    policy = policy or StepPolicy()
    ev = _evidence(obs, policy)
    entries = tuple(ev.values())
    n = obs.canary_requests

    def verdict(decision: Literal["wait", "promote", "rollback"], reason: str) -> StepVerdict:
        return StepVerdict(decision, reason, entries)

    if n >= policy.guard_min_requests:
        rate, ratio, kl = ev["error_rate"].value, ev["p99_ratio"].value, obs.kl
        if rate is not None and rate > policy.rollback_error_rate:
            return verdict(
                "rollback", f"canary error rate {rate:.4f} > {policy.rollback_error_rate:g}"
            )
        p99_judged = ratio is not None and n >= P99_MIN_REQUESTS
        if p99_judged and _slower(obs, policy.rollback_p99_ratio, policy.p99_slack_s):
            return verdict(
                "rollback", f"canary p99 is {ratio:.3f}x stable's > {policy.rollback_p99_ratio:g}"
            )
        if kl is not None and kl > policy.kl_max and policy.kl_action == "rollback":
            return verdict("rollback", f"prediction KL {kl:.4f} > {policy.kl_max:g}")
    for name, what in (("error_rate_test", "error rate"), ("latency_test", "latency")):
        if ev[name].passed is False:
            return verdict(
                "rollback",
                f"canary {what} significantly worse than stable "
                f"(always-valid p <= {policy.alpha / 2:g})",
            )
    gates = ("canary_requests", "elapsed_s", "error_rate", "p99_ratio", "kl")
    if all(ev[g].passed for g in gates):
        return verdict("promote", "all promote gates hold")
    if obs.elapsed_s >= policy.max_duration_s:
        if n < policy.min_requests:
            return verdict("rollback", "deadline passed without enough canary traffic")
        failing = ", ".join(g for g in gates if not ev[g].passed)
        note = ""
        if not ev["error_rate"].passed and obs.stable_requests:
            stable_rate = obs.stable_errors / obs.stable_requests
            note = f" (the stable's own error rate is {stable_rate:.4f})"
        return verdict("rollback", f"deadline passed with promote gates failing: {failing}{note}")
    if n == 0:
        return verdict("wait", "no canary traffic yet")
    pending = ", ".join(g for g in gates if not ev[g].passed)
    return verdict("wait", f"waiting on: {pending}")


@dataclass(frozen=True, slots=True)
class MeanStats:
    """Count, mean and sample variance of one version's outcomes."""

    n: int
    mean: float
    var: float

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"n must be >= 0, got {self.n!r}")
        _finite_nonneg("var", self.var)
        if not math.isfinite(self.mean):
            raise ValueError(f"mean must be finite, got {self.mean!r}")


def mean_difference_test(
    a: MeanStats, b: MeanStats, *, alpha: float = 0.05, mixture_sd: float = 0.1
) -> SequentialResult:
    """Always-valid two-sided test of mean(a) != mean(b) (two-sample mSPRT, Gaussian mixture).

    The difference of means ``d`` with variance ``v = var_a / n_a + var_b / n_b`` is mixed
    over ``N(0, tau^2)`` with ``tau = mixture_sd`` times the pooled standard deviation
    (so the prior is scale-free): ``Lambda = sqrt(v / (v + tau^2)) exp(d^2 tau^2 /
    (2 v (v + tau^2)))`` (Johari et al. 2022, section 4). ``decision`` is "worse" when the
    means differ significantly; the sign of ``estimate`` (a minus b) says which is higher.
    Fewer than 2 outcomes on a side: no evidence yet.
    """
    if not mixture_sd > 0.0:
        raise ValueError(f"mixture_sd must be > 0, got {mixture_sd!r}")
    if a.n < 2 or b.n < 2:
        return _result(0.0, 0.0, alpha, 1.0)
    d = a.mean - b.mean
    v = a.var / a.n + b.var / b.n
    pooled_sd = math.sqrt(((a.n - 1) * a.var + (b.n - 1) * b.var) / (a.n + b.n - 2))
    tau = mixture_sd * pooled_sd
    if not (v > 0.0 and tau > 0.0):
        return _result(0.0, 0.0, alpha, 1.0)
    tau2 = tau * tau
    total = v + tau2
    log_lr = 0.5 * math.log(v / total) + d * d * tau2 / (2.0 * v * total)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be within (0, 1), got {alpha!r}")
    statistic = math.exp(min(log_lr, _MAX_LOG))
    threshold = 1.0 / alpha
    decision: Literal["continue", "worse"] = "worse" if statistic >= threshold else "continue"
    return SequentialResult(d, statistic, threshold, min(1.0, 1.0 / statistic), decision)
