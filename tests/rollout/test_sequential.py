"""Always-valid tests: worked examples, SciPy cross-checks, and false-positive rates under
repeated looks on seeded simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import binom, chi2_contingency

from driftloop.rollout.sequential import (
    MeanStats,
    distribution_shift_test,
    merge_sparse_bins,
    paired_mean_test,
    pearson_chi2,
    proportion_above_test,
)

TRIALS = 300
ALPHA = 0.05
SLACK = 2 * math.sqrt(ALPHA * (1 - ALPHA) / TRIALS)  # two standard errors; seeds are fixed
CLASSES = np.array([0.40, 0.25, 0.15, 0.12, 0.08])
SHIFTED = np.array([0.22, 0.25, 0.15, 0.15, 0.23])  # KL(shifted || classes) ~0.145


def test_proportion_above_matches_the_mixture_integral_computed_by_quadrature() -> None:
    k, n, level = 7, 120, 0.02
    b = (1.0 - 2 * level) / (2 * level)  # Beta(1, b) with mean 2 x level, truncated at level

    def prior(p: float) -> float:
        return float((1 - p) ** (b - 1))

    def joint(p: float) -> float:
        return prior(p) * float(binom.pmf(k, n, p))

    top = integrate.quad(joint, level, 1.0, points=[k / n], limit=200)[0]
    mass = integrate.quad(prior, level, 1.0)[0]
    expected = top / mass / float(binom.pmf(k, n, level))
    result = proportion_above_test(k, n, level, alpha=0.01)
    assert result.statistic == pytest.approx(expected, rel=1e-6)
    assert result.estimate == pytest.approx(k / n - level)


def test_proportion_above_on_shares_at_the_level_checked_every_50_stays_within_alpha() -> None:
    rng = np.random.default_rng(5)
    hits = 0
    for _ in range(TRIALS):
        errors = np.cumsum(rng.random(3000) < 0.02)
        hits += any(
            proportion_above_test(int(errors[n - 1]), n, 0.02, alpha=ALPHA).decision == "worse"
            for n in range(50, 3001, 50)
        )
    assert hits / TRIALS <= ALPHA + SLACK


def test_proportion_above_finds_5_percent_against_a_2_percent_level_within_1000() -> None:
    rng = np.random.default_rng(6)
    found = 0
    for _ in range(100):
        errors = np.cumsum(rng.random(1000) < 0.05)
        found += any(
            proportion_above_test(int(errors[n - 1]), n, 0.02, alpha=0.005).decision == "worse"
            for n in range(50, 1001, 50)
        )
    assert found >= 95  # measured: 99 of 100 (72 within 600, 90 within 800)


def test_proportion_above_with_no_requests_has_no_evidence_and_rejects_a_bad_prior() -> None:
    assert proportion_above_test(0, 0, 0.01).statistic == 1.0
    with pytest.raises(ValueError, match="prior_mean"):
        proportion_above_test(1, 10, 0.01, prior_mean=0.005)
    with pytest.raises(ValueError, match="count"):
        proportion_above_test(11, 10, 0.01)


def test_pearson_chi2_equals_scipy_chi2_contingency_without_correction() -> None:
    canary, stable = np.array([30.0, 12, 9, 20, 4]), np.array([210.0, 120, 80, 70, 40])
    expected = chi2_contingency(np.vstack([canary, stable]), correction=False).statistic
    assert pearson_chi2(canary, stable) == pytest.approx(float(expected))


def test_shift_statistic_is_the_closed_form_mixture_of_chi_square() -> None:
    canary, stable = np.array([30.0, 12, 9, 20, 9]), np.array([210.0, 120, 80, 70, 40])
    result = distribution_shift_test(canary, stable, alpha=0.01, divergence_scale=0.1)
    m, v = 4, 1 / canary.sum() + 1 / stable.sum()
    tau2 = 2 * 0.1 / m
    x2 = float(chi2_contingency(np.vstack([canary, stable]), correction=False).statistic)
    expected = (v / (v + tau2)) ** (m / 2) * math.exp(x2 * tau2 / (2 * (v + tau2)))
    assert result.statistic == pytest.approx(expected)
    assert result.estimate == pytest.approx(x2 * v)


def test_sparse_bins_are_merged_until_each_expects_enough_canary_counts() -> None:
    canary, stable = np.array([5.0, 0, 1, 1, 0, 3]), np.array([45.0, 0, 9, 4, 1, 27])
    c, s = merge_sparse_bins(canary, stable, 4.0)  # the canary holds 10 of 96: 0.104 a count
    assert (c.tolist(), s.tolist()) == ([5.0, 5.0], [45.0, 41.0])  # bins 3-6 expect 4.8
    c, s = merge_sparse_bins(canary, stable, 5.0)  # 4.8 is short: the tail joins the first
    assert (c.tolist(), s.tolist()) == ([10.0], [86.0])
    assert distribution_shift_test([3, 0], [0, 0]).decision == "continue"


def _first_shift(rng: np.random.Generator, shares: np.ndarray, looks: int) -> int | None:
    canary = np.cumsum(rng.multinomial(50, shares, looks), axis=0)
    stable = np.cumsum(rng.multinomial(450, CLASSES, looks), axis=0)
    for i in range(looks):
        if distribution_shift_test(canary[i], stable[i], alpha=ALPHA).decision == "worse":
            return 50 * (i + 1)
    return None


def test_shift_test_on_identical_predictions_checked_every_50_requests_stays_within_alpha() -> None:
    rng = np.random.default_rng(8)
    hits = sum(_first_shift(rng, CLASSES, 60) is not None for _ in range(TRIALS))
    assert hits / TRIALS <= ALPHA + SLACK


def test_shift_test_finds_a_kl_0_15_shift_within_250_canary_requests() -> None:
    rng = np.random.default_rng(9)
    found = [_first_shift(rng, SHIFTED, 5) for _ in range(100)]
    assert sum(n is not None for n in found) >= 95


def test_shift_test_rejects_misaligned_or_negative_counts_naming_them() -> None:
    with pytest.raises(ValueError, match="align"):
        distribution_shift_test([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="counts"):
        distribution_shift_test([1, -2], [1, 2])


def test_paired_test_worked_example() -> None:
    # n = 400 differences, mean -0.05, sd 0.25: v = 0.0625 / 400, tau = 0.2 x 0.25
    result = paired_mean_test(MeanStats(400, -0.05, 0.0625), alpha=0.01, mixture_sd=0.2)
    v, tau2 = 0.0625 / 400, 0.05**2
    expected = math.sqrt(v / (v + tau2)) * math.exp(0.0025 * tau2 / (2 * v * (v + tau2)))
    assert result.statistic == pytest.approx(expected)
    assert result.decision == "worse" and result.estimate < 0  # significantly lower loss


def test_paired_test_waits_for_min_pairs() -> None:
    assert paired_mean_test(MeanStats(20, -1.0, 0.01), min_pairs=30).decision == "continue"


def test_paired_test_on_equal_losses_checked_every_20_pairs_stays_within_alpha() -> None:
    rng = np.random.default_rng(10)
    hits = 0
    for _ in range(TRIALS):
        # per-row log-loss differences are skewed: a difference of two exponentials
        diffs = rng.exponential(0.3, 2000) - rng.exponential(0.3, 2000)
        hits += any(
            paired_mean_test(MeanStats.of(diffs[:n]), alpha=ALPHA).decision == "worse"
            for n in range(40, 2001, 20)
        )
    assert hits / TRIALS <= ALPHA + SLACK


def test_mean_stats_of_an_array_uses_the_sample_variance() -> None:
    stats = MeanStats.of([1.0, 2.0, 4.0])
    assert stats.n == 3
    assert stats.mean == pytest.approx(7 / 3)
    assert stats.var == pytest.approx(np.var([1.0, 2.0, 4.0], ddof=1))
    assert MeanStats.of([]) == MeanStats(0, 0.0, 0.0)
