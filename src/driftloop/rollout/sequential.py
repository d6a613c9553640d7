"""Always-valid sequential tests for canary judging (pure: counts in, a frozen result out).

Every test here is a mixture sequential probability ratio test (mSPRT) in the
normal-approximation form of Johari, Koomen, Pekelis and Walsh, "Always Valid Inference:
Continuous Monitoring of A/B Tests", Operations Research 70(3), 2022 (arXiv:1512.04922),
section 4: an asymptotically Gaussian estimate is compared with its null value and the
likelihood ratio is mixed over a prior on the effect. The mixture ratio ``Lambda`` is a
nonnegative supermartingale under the null, so by Ville's inequality
``P(Lambda ever >= 1/alpha) <= alpha`` however often it is looked at; ``1/Lambda`` is the
always-valid p-value of the current look. The approximation is asymptotic: each test
waits for enough counts (documented per test) and the tests check the false-positive rate
under repeated looks on seeded simulations.

* :func:`error_rate_test`: canary error rate above the stable's (two binomials, one-sided).
* :func:`proportion_above_test`: one share above a fixed level (an absolute threshold).
* :func:`exceedance_test`: canary share slower than the stable's p99 above 1 %.
* :func:`distribution_shift_test`: canary predictions distributed differently from the
  stable's (two multinomials; the chi-square form of a multivariate Gaussian mixture).
* :func:`paired_mean_test`: the mean of per-row differences (the challenger's loss minus the
  stable's on the same labelled requests) differs from 0 (two-sided).
* :func:`mean_difference_test`: two independent means differ (two-sided, A/B outcomes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import betaincc, betaln, log_ndtr

__all__ = [
    "MeanStats",
    "SequentialResult",
    "distribution_shift_test",
    "error_rate_test",
    "exceedance_test",
    "mean_difference_test",
    "merge_sparse_bins",
    "mixture_log_lr",
    "paired_mean_test",
    "pearson_chi2",
    "proportion_above_test",
]

_MAX_LOG = 700.0
Decision = Literal["continue", "worse"]


@dataclass(frozen=True, slots=True)
class SequentialResult:
    """One look of an mSPRT: estimate, mixture likelihood ratio, threshold, decision.

    ``decision`` is "worse" once the ratio reaches ``1 / alpha`` (for the two-sided tests:
    "differs", the sign of ``estimate`` says in which direction).
    """

    estimate: float
    statistic: float
    threshold: float
    p_value: float
    decision: Decision


@dataclass(frozen=True, slots=True)
class MeanStats:
    """Count, mean and sample variance of one set of values."""

    n: int
    mean: float
    var: float

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"n must be >= 0, got {self.n!r}")
        if not (math.isfinite(self.var) and self.var >= 0.0):
            raise ValueError(f"var must be a finite number >= 0, got {self.var!r}")
        if not math.isfinite(self.mean):
            raise ValueError(f"mean must be finite, got {self.mean!r}")

    @staticmethod
    def of(values: Sequence[float] | np.ndarray) -> MeanStats:
        """The stats of an array (sample variance with ``ddof=1``; 0 below two values)."""
        x = np.asarray(values, dtype=np.float64).reshape(-1)
        if x.size == 0:
            return MeanStats(0, 0.0, 0.0)
        return MeanStats(int(x.size), float(x.mean()), float(x.var(ddof=1)) if x.size > 1 else 0.0)


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be within (0, 1), got {alpha!r}")


def _decide(estimate: float, log_lr: float, alpha: float) -> SequentialResult:
    _check_alpha(alpha)
    statistic = math.exp(min(log_lr, _MAX_LOG))
    threshold = 1.0 / alpha
    decision: Decision = "worse" if statistic >= threshold else "continue"
    return SequentialResult(estimate, statistic, threshold, min(1.0, 1.0 / statistic), decision)


def _no_evidence(alpha: float, estimate: float = 0.0) -> SequentialResult:
    return _decide(estimate, 0.0, alpha)


def mixture_log_lr(diff: float, variance: float, mixture_sd: float) -> float:
    """Log of the half-normal-mixture likelihood ratio for a Gaussian estimate ``diff``:

    ``Lambda = 2 sqrt(v / (v + tau^2)) exp(d^2 tau^2 / (2 v (v + tau^2)))
    Phi(d tau / sqrt(v (v + tau^2)))`` (one-sided, positive differences)."""
    if not mixture_sd > 0.0:
        raise ValueError(f"mixture_sd must be > 0, got {mixture_sd!r}")
    if not variance > 0.0:
        return 0.0
    tau2 = mixture_sd * mixture_sd
    total = variance + tau2
    quad = diff * diff * tau2 / (2.0 * variance * total)
    z = diff * mixture_sd / math.sqrt(variance * total)
    return math.log(2.0) + 0.5 * math.log(variance / total) + quad + float(log_ndtr(z))


def _one_sided(
    diff: float, variance: float, alpha: float, mixture_sd: float, correction: float = 0.0
) -> SequentialResult:
    _check_alpha(alpha)
    return _decide(diff, mixture_log_lr(diff - correction, variance, mixture_sd), alpha)


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
    """Always-valid test that the canary's error rate exceeds the stable's (cumulative counts).

    The variance is the pooled (null) binomial one and the canary count gets a continuity
    correction of -0.5: with few errors the binomial is right-skewed, and without it the
    false-positive rate reached ~alpha x 1.2 in simulation (1% errors, 20 canary requests a
    look); with it ~alpha x 0.6.
    """
    _check_count("canary_errors", canary_errors, "canary_requests", canary_requests)
    _check_count("stable_errors", stable_errors, "stable_requests", stable_requests)
    if canary_requests == 0 or stable_requests == 0:
        return _no_evidence(alpha)
    diff = canary_errors / canary_requests - stable_errors / stable_requests
    pooled = (canary_errors + stable_errors) / (canary_requests + stable_requests)
    variance = pooled * (1.0 - pooled) * (1.0 / canary_requests + 1.0 / stable_requests)
    return _one_sided(diff, variance, alpha, mixture_sd, 0.5 / canary_requests)


def proportion_above_test(
    count: int, total: int, level: float, *, alpha: float = 0.05, prior_mean: float | None = None
) -> SequentialResult:
    """Exact always-valid test that the share ``count / total`` is above a fixed ``level``.

    A beta-binomial mixture likelihood ratio with the prior ``Beta(1, b)`` truncated to
    shares above ``level`` (``b`` puts its untruncated mean at ``prior_mean``, default
    twice the level)::

        Lambda = B(1 + k, b + n - k) Q(level; 1 + k, b + n - k)
                 / (B(1, b) Q(level; 1, b) level^k (1 - level)^(n - k))

    with ``Q`` the regularised upper incomplete beta function. For every share ``p'`` above
    the level the likelihood ratio against the level is a supermartingale whenever the true
    share is at or below it, so the mixture is too: no normal approximation, valid from the
    first request (the Gaussian form fired on 3 of 1000 simulated A/A rollouts at a 2 %
    stable, each on a handful of early errors).
    """
    _check_count("count", count, "total", total)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be within (0, 1), got {level!r}")
    mean = 2.0 * level if prior_mean is None else prior_mean
    if not level < mean < 1.0:
        raise ValueError(f"prior_mean must be within ({level}, 1), got {prior_mean!r}")
    _check_alpha(alpha)
    if total == 0:
        return _no_evidence(alpha)
    a, b = 1.0, (1.0 - mean) / mean
    k, n = float(count), float(total)
    upper = float(betaincc(a + k, b + n - k, level))
    if upper <= 0.0:
        return _decide(count / total - level, -math.inf, alpha)
    log_lr = (
        float(betaln(a + k, b + n - k))
        + math.log(upper)
        - float(betaln(a, b))
        - math.log(float(betaincc(a, b, level)))
        - k * math.log(level)
        - (n - k) * math.log1p(-level)
    )
    return _decide(count / total - level, log_lr, alpha)


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

    Under identical versions the share is ``null_share`` (0.01 for a p99). The p99 was
    estimated from ``stable_requests`` requests: its sampling noise is added to the variance
    as ``null_share (1 - null_share) / stable_requests``, and the test says "continue" until
    ``stable_requests * null_share >= min_stable_tail`` and
    ``canary_requests * null_share >= min_canary_tail``: with fewer the p99 and the canary
    count are too noisy and skewed for the Gaussian approximation. Simulated A/A at alpha
    0.0025: 6/400 false positives at a 10/90 split and 13/400 at 50/50 without the stable
    floor; with both floors 1/1000 at 10/90 and 4/1000 at 50/50 (still ~1.6x alpha there).
    The canary count's continuity correction is a whole request (-1), not half: in
    ``benchmarks/canary.py``'s A/A streams (1000 trials, 60 looks, alpha 0.00167) -0.5 gave
    3/1000 false positives at 10/90 and -1 gave 1/1000, with a 30 % slower canary still
    found at a median 200 canary requests; at 50/50 3/1000 either way.
    """
    _check_count("canary_slow", canary_slow, "canary_requests", canary_requests)
    if not 0.0 < null_share < 1.0:
        raise ValueError(f"null_share must be within (0, 1), got {null_share!r}")
    if stable_requests is not None and stable_requests < 0:
        raise ValueError(f"stable_requests must be >= 0, got {stable_requests!r}")
    if canary_requests * null_share < min_canary_tail or (
        stable_requests is not None and stable_requests * null_share < min_stable_tail
    ):
        return _no_evidence(alpha)
    inverse_n = 1.0 / canary_requests + (1.0 / stable_requests if stable_requests else 0.0)
    variance = null_share * (1.0 - null_share) * inverse_n
    diff = canary_slow / canary_requests - null_share
    return _one_sided(diff, variance, alpha, mixture_sd, 1.0 / canary_requests)


def merge_sparse_bins(
    canary: np.ndarray, stable: np.ndarray, min_expected: float
) -> tuple[np.ndarray, np.ndarray]:
    """Merge neighbouring bins (in bin order) until each holds ``min_expected`` canary
    requests under the null (its pooled count times the canary's share of all requests);
    a short last group joins the one before. Bins empty on both sides are dropped."""
    keep = (canary + stable) > 0
    c, s = canary[keep], stable[keep]
    n_c, n = c.sum(), c.sum() + s.sum()
    if n == 0:
        return c, s
    share = n_c / n
    groups_c: list[float] = []
    groups_s: list[float] = []
    acc_c = acc_s = 0.0
    for ci, si in zip(c.tolist(), s.tolist(), strict=True):
        acc_c, acc_s = acc_c + ci, acc_s + si
        if (acc_c + acc_s) * share >= min_expected:
            groups_c.append(acc_c)
            groups_s.append(acc_s)
            acc_c = acc_s = 0.0
    if acc_c + acc_s > 0:
        if groups_c:
            groups_c[-1] += acc_c
            groups_s[-1] += acc_s
        else:
            groups_c.append(acc_c)
            groups_s.append(acc_s)
    return np.asarray(groups_c), np.asarray(groups_s)


def pearson_chi2(canary: np.ndarray, stable: np.ndarray) -> float:
    """Pearson's chi-square statistic of homogeneity for two rows of counts (no continuity
    correction: ``scipy.stats.chi2_contingency(..., correction=False)``)."""
    table = np.vstack([canary, stable]).astype(np.float64)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    return float(((table - expected) ** 2 / expected).sum())


def distribution_shift_test(
    canary_counts: Sequence[float] | np.ndarray,
    stable_counts: Sequence[float] | np.ndarray,
    *,
    alpha: float = 0.05,
    divergence_scale: float = 0.1,
    min_expected: float = 5.0,
) -> SequentialResult:
    """Always-valid test that canary predictions are distributed differently from the
    stable's, from counts on the same bins (classes, or prediction histogram buckets).

    Under "same distribution" the difference of the two share vectors ``d`` (``m`` = bins
    - 1 free coordinates) is asymptotically ``N(0, v S)`` with ``v = 1/n_c + 1/n_s`` and
    ``S = diag(q) - q q^T`` (``q`` the pooled shares). Mixing the shift over
    ``N(0, tau^2 S)`` gives a closed form in Pearson's chi-square statistic ``X^2``::

        Lambda = (v / (v + tau^2))^(m / 2) exp(X^2 tau^2 / (2 (v + tau^2)))

    The prior is scaled to the shifts that matter: a shift ``delta`` has ``delta' S^-1
    delta`` equal to its chi-square divergence, about twice its KL divergence, and the
    prior's mean of that is ``m tau^2``; so ``tau^2 = 2 divergence_scale / m``. Bins are
    merged until each expects ``min_expected`` canary counts (``merge_sparse_bins``), so
    sparse tails do not inflate ``X^2``. ``estimate`` is ``X^2 v`` (the squared shift in
    the null's metric, about twice the KL divergence).
    """
    _check_alpha(alpha)
    if not divergence_scale > 0.0:
        raise ValueError(f"divergence_scale must be > 0, got {divergence_scale!r}")
    c = np.asarray(canary_counts, dtype=np.float64).reshape(-1)
    s = np.asarray(stable_counts, dtype=np.float64).reshape(-1)
    if c.shape != s.shape:
        raise ValueError(f"canary_counts has {c.size} bins and stable_counts {s.size}: align them")
    if (c < 0).any() or (s < 0).any() or not (np.isfinite(c).all() and np.isfinite(s).all()):
        raise ValueError("canary_counts and stable_counts must be finite counts >= 0")
    c, s = merge_sparse_bins(c, s, min_expected)
    n_c, n_s = float(c.sum()), float(s.sum())
    if c.size < 2 or n_c <= 0 or n_s <= 0:
        return _no_evidence(alpha)
    m = c.size - 1
    v = 1.0 / n_c + 1.0 / n_s
    tau2 = 2.0 * divergence_scale / m
    x2 = pearson_chi2(c, s)
    log_lr = 0.5 * m * math.log(v / (v + tau2)) + x2 * tau2 / (2.0 * (v + tau2))
    return _decide(x2 * v, log_lr, alpha)


def _two_sided(d: float, v: float, tau: float, alpha: float) -> SequentialResult:
    if not (v > 0.0 and tau > 0.0):
        return _no_evidence(alpha)
    tau2 = tau * tau
    total = v + tau2
    return _decide(d, 0.5 * math.log(v / total) + d * d * tau2 / (2.0 * v * total), alpha)


def paired_mean_test(
    diffs: MeanStats, *, alpha: float = 0.05, mixture_sd: float = 0.2, min_pairs: int = 30
) -> SequentialResult:
    """Always-valid two-sided test that the mean of paired differences is not 0.

    ``Lambda = sqrt(v / (v + tau^2)) exp(d^2 tau^2 / (2 v (v + tau^2)))`` with ``d`` the
    mean difference, ``v = var / n`` and ``tau = mixture_sd`` x the differences' standard
    deviation (a scale-free prior on the standardised effect). Fewer than ``min_pairs``
    pairs: no evidence (the variance estimate is too rough for the Gaussian form).
    """
    _check_alpha(alpha)
    if not mixture_sd > 0.0:
        raise ValueError(f"mixture_sd must be > 0, got {mixture_sd!r}")
    if diffs.n < max(min_pairs, 2):
        return _no_evidence(alpha, diffs.mean if diffs.n else 0.0)
    return _two_sided(diffs.mean, diffs.var / diffs.n, mixture_sd * math.sqrt(diffs.var), alpha)


def mean_difference_test(
    a: MeanStats, b: MeanStats, *, alpha: float = 0.05, mixture_sd: float = 0.1
) -> SequentialResult:
    """Always-valid two-sided test of mean(a) != mean(b) (two-sample mSPRT, Gaussian mixture).

    ``d`` = mean(a) - mean(b) with ``v = var_a / n_a + var_b / n_b``, mixed over
    ``N(0, tau^2)`` with ``tau = mixture_sd`` x the pooled standard deviation.
    ``decision`` is "worse" when the means differ significantly; the sign of ``estimate``
    says which is higher. Fewer than 2 values on a side: no evidence yet.
    """
    if not mixture_sd > 0.0:
        raise ValueError(f"mixture_sd must be > 0, got {mixture_sd!r}")
    _check_alpha(alpha)
    if a.n < 2 or b.n < 2:
        return _no_evidence(alpha)
    v = a.var / a.n + b.var / b.n
    pooled_sd = math.sqrt(((a.n - 1) * a.var + (b.n - 1) * b.var) / (a.n + b.n - 2))
    return _two_sided(a.mean - b.mean, v, mixture_sd * pooled_sd, alpha)
