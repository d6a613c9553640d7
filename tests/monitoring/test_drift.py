from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from driftloop.monitoring.drift import (
    PSI_ACT,
    PSI_NOTICE,
    PSI_WARNING,
    PersistentDrift,
    benjamini_hochberg,
    chi_square,
    decide_feature_drift,
    js_divergence,
    kl_divergence,
    ks_test,
    psi,
    psi_level,
    wasserstein_from_counts,
    wasserstein_normalized,
)
from driftloop.statistics.profile import bin_counts, profile_column


def smoothed(counts: list[int], smoothing: float = 0.5) -> np.ndarray:
    arr = np.asarray(counts, dtype=float) + smoothing
    return arr / arr.sum()


# PSI


def test_psi_of_identical_counts_is_zero() -> None:
    assert psi([10, 0, 30, 5], [10, 0, 30, 5]) == 0.0


def test_psi_of_proportional_counts_is_zero_without_smoothing() -> None:
    assert psi([10, 20, 30], [20, 40, 60], smoothing=0) == pytest.approx(0.0, abs=1e-15)


def test_psi_worked_example_without_smoothing_is_quarter_ln_3() -> None:
    # r = (.5, .5), c = (.25, .75): -.25 ln .5 + .25 ln 1.5 = .25 ln 3
    assert psi([50, 50], [25, 75], smoothing=0) == pytest.approx(0.25 * math.log(3), rel=1e-15)


def test_psi_worked_example_with_default_smoothing_adds_half_to_every_bin() -> None:
    # [0.5, 4.5] / 5 = (.1, .9) and [2.5, 2.5] / 5 = (.5, .5): .4 ln 5 + .4 ln 1.8 = .8 ln 3
    assert psi([0, 4], [2, 2]) == pytest.approx(0.8 * math.log(3), rel=1e-14)


def test_psi_with_an_empty_bin_is_finite_with_smoothing_and_infinite_without() -> None:
    assert math.isfinite(psi([100, 0], [50, 50]))
    assert psi([100, 0], [50, 50], smoothing=0) == math.inf


def test_psi_is_symmetric() -> None:
    a, b = [5, 17, 40, 2], [12, 3, 30, 9]
    assert psi(a, b) == pytest.approx(psi(b, a), rel=1e-14)


@pytest.mark.parametrize(
    ("reference", "current", "smoothing", "message"),
    [
        ([1, 2], [1, 2, 3], 0.5, "same number of bins, got 2 and 3"),
        ([1, -2], [1, 2], 0.5, "bin 1 is -2.0"),
        ([0, 0], [1, 2], 0.5, "reference_counts is empty"),
        ([1, 2], [0, 0], 0.5, "current_counts is empty"),
        ([], [], 0.5, "non-empty"),
        ([1, 2], [1, 2], -1.0, "smoothing must be finite and >= 0, got -1.0"),
        ([1, float("nan")], [1, 2], 0.5, "bin 1 is nan"),
    ],
)
def test_psi_refuses_invalid_counts_naming_the_problem(
    reference: list[float], current: list[float], smoothing: float, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        psi(reference, current, smoothing)


@pytest.mark.parametrize(
    ("value", "level"),
    [
        (0.0, "none"),
        (0.0999, "none"),
        (PSI_NOTICE, "notice"),
        (0.1499, "notice"),
        (PSI_WARNING, "warning"),
        (0.2499, "warning"),
        (PSI_ACT, "act"),
        (3.0, "act"),
        (math.inf, "act"),
    ],
)
def test_psi_level_reaching_a_threshold_counts_as_that_level(value: float, level: str) -> None:
    assert psi_level(value) == level


def test_psi_level_defaults_are_the_specified_thresholds() -> None:
    assert (PSI_NOTICE, PSI_WARNING, PSI_ACT) == (0.10, 0.15, 0.25)


def test_psi_level_with_custom_thresholds_uses_them() -> None:
    assert psi_level(0.3, notice=0.2, warning=0.4, act=0.8) == "notice"


def test_psi_level_refuses_nan_negative_values_and_unordered_thresholds() -> None:
    with pytest.raises(ValueError, match=re.escape("got nan")):
        psi_level(math.nan)
    with pytest.raises(ValueError, match=re.escape("got -0.1")):
        psi_level(-0.1)
    with pytest.raises(ValueError, match=re.escape("notice=0.3, warning=0.2")):
        psi_level(0.1, notice=0.3, warning=0.2)


# KL and JS


def test_kl_divergence_matches_scipy_entropy_on_smoothed_proportions() -> None:
    rng = np.random.default_rng(10)
    p, q = rng.integers(0, 50, 12).tolist(), rng.integers(0, 50, 12).tolist()
    p[3] = 0
    expected = stats.entropy(smoothed(p), smoothed(q))
    assert kl_divergence(p, q) == pytest.approx(expected, rel=1e-12)


def test_kl_divergence_worked_example_is_half_ln_four_thirds() -> None:
    # .5 ln(.5 / .25) + .5 ln(.5 / .75) = .5 ln(4 / 3)
    assert kl_divergence([1, 1], [1, 3], smoothing=0) == pytest.approx(0.5 * math.log(4 / 3))


def test_kl_divergence_is_not_symmetric() -> None:
    assert kl_divergence([90, 10], [50, 50]) != pytest.approx(kl_divergence([50, 50], [90, 10]))


def test_js_divergence_matches_squared_scipy_jensenshannon_base_2() -> None:
    rng = np.random.default_rng(11)
    p, q = rng.integers(0, 50, 12).tolist(), rng.integers(0, 50, 12).tolist()
    expected = jensenshannon(smoothed(p), smoothed(q), base=2) ** 2
    assert js_divergence(p, q) == pytest.approx(expected, rel=1e-12)


def test_js_divergence_of_identical_counts_is_zero_and_of_disjoint_counts_is_one() -> None:
    assert js_divergence([3, 0, 7], [3, 0, 7]) == 0.0
    assert js_divergence([5, 0], [0, 5], smoothing=0) == pytest.approx(1.0, rel=1e-15)


# KS


def test_ks_test_matches_scipy_after_dropping_nan() -> None:
    rng = np.random.default_rng(12)
    ref, cur = rng.normal(size=300), rng.normal(0.2, 1.0, size=200)
    expected = stats.ks_2samp(ref, cur)
    result = ks_test(np.append(ref, [np.nan, np.nan]), np.append(cur, np.nan))
    assert result.statistic == expected.statistic
    assert result.pvalue == expected.pvalue
    assert (result.n_reference, result.n_current) == (300, 200)


def test_ks_test_refuses_a_side_without_finite_values() -> None:
    with pytest.raises(ValueError, match=re.escape("current has no finite values")):
        ks_test([1.0, 2.0], [np.nan])
    with pytest.raises(
        ValueError, match=re.escape("reference must not contain infinite values, found 1")
    ):
        ks_test([1.0, np.inf], [1.0])


# Wasserstein


def test_wasserstein_normalized_worked_example_divides_by_reference_std() -> None:
    # Shifting [0, 2] by 1 moves all mass 1; std (ddof=1) of [0, 2] is sqrt(2).
    assert wasserstein_normalized([0.0, 2.0], [1.0, 3.0]) == pytest.approx(1 / math.sqrt(2))


def test_wasserstein_normalized_with_constant_reference_divides_by_one() -> None:
    assert wasserstein_normalized([5.0, 5.0, np.nan], [6.0, 6.0]) == pytest.approx(1.0)


def test_wasserstein_from_counts_worked_example_uses_bin_midpoints() -> None:
    # Points -0.5, 0.5, 1.5, 2.5; reference at 0.5 and 1.5 (std sqrt(0.5)), current moved by 1.
    result = wasserstein_from_counts([0.0, 1.0, 2.0], [0, 1, 1, 0], [0, 0, 1, 1])
    assert result == pytest.approx(math.sqrt(2))


def test_wasserstein_from_counts_with_one_edge_puts_both_bins_on_it() -> None:
    assert wasserstein_from_counts([3.0], [5, 0], [0, 5]) == 0.0


def test_wasserstein_from_counts_refuses_counts_not_matching_the_edges() -> None:
    with pytest.raises(ValueError, match=re.escape("len(edges) + 1 = 3 bins, got 2")):
        wasserstein_from_counts([0.0, 1.0], [1, 1], [1, 1])
    with pytest.raises(ValueError, match=re.escape("strictly increasing, edge 1 is 0.0")):
        wasserstein_from_counts([1.0, 0.0], [1, 1, 1], [1, 1, 1])


@pytest.mark.parametrize(("shift", "scale"), [(0.0, 1.0), (0.3, 1.0), (0.5, 0.7)])
def test_wasserstein_from_counts_approximates_raw_on_20_quantile_bins(
    shift: float, scale: float
) -> None:
    # Tolerance 0.02 (in reference standard deviations). The open outer bins hold their
    # 5 % of mass at one point each, so changes in the tails (larger shifts, wider spread)
    # are underestimated more than this.
    rng = np.random.default_rng(13)
    ref, cur = rng.normal(size=200_000), rng.normal(shift, scale, size=200_000)
    column = profile_column(ref, 20)
    ref_counts, _ = bin_counts(ref, column.edges)
    cur_counts, _ = bin_counts(cur, column.edges)
    binned = wasserstein_from_counts(column.edges, ref_counts, cur_counts)
    assert binned == pytest.approx(wasserstein_normalized(ref, cur), abs=0.02)


# Chi-square


def test_chi_square_worked_example_drops_bins_empty_on_both_sides() -> None:
    # Expected 15 in each of the four cells: 4 * 5**2 / 15 = 20 / 3, one degree of freedom.
    result = chi_square([10, 20, 0], [20, 10, 0])
    assert result.statistic == pytest.approx(20 / 3)
    assert result.dof == 1
    assert result.pvalue == pytest.approx(stats.chi2.sf(20 / 3, 1))


def test_chi_square_matches_scipy_chi2_contingency() -> None:
    rng = np.random.default_rng(14)
    ref, cur = rng.integers(1, 100, 6), rng.integers(1, 100, 6)
    expected = stats.chi2_contingency(np.vstack([ref, cur]), correction=False)
    result = chi_square(ref, cur)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.pvalue == pytest.approx(expected.pvalue, rel=1e-12)
    assert result.dof == expected.dof == 5


def test_chi_square_with_one_occupied_bin_has_zero_statistic() -> None:
    result = chi_square([0, 7], [0, 9])
    assert (result.statistic, result.pvalue, result.dof) == (0.0, 1.0, 0)


# Benjamini-Hochberg


def test_benjamini_hochberg_matches_scipy_false_discovery_control() -> None:
    rng = np.random.default_rng(15)
    p = np.concatenate([rng.uniform(0, 0.01, 15), rng.uniform(0, 1, 85)])
    rng.shuffle(p)
    for alpha in (0.01, 0.05, 0.1):
        expected = stats.false_discovery_control(p, method="bh") <= alpha
        assert benjamini_hochberg(p, alpha) == tuple(bool(x) for x in expected)


def test_benjamini_hochberg_steps_up_past_a_p_value_above_its_own_threshold() -> None:
    # Thresholds i * 0.05 / 4 = .0125, .025, .0375, .05: .03 misses its own but .04 passes.
    assert benjamini_hochberg([0.04, 0.001, 0.035, 0.03]) == (True, True, True, True)
    assert benjamini_hochberg([0.01, 0.02, 0.03, 0.5]) == (True, True, True, False)


def test_benjamini_hochberg_of_no_p_values_rejects_nothing() -> None:
    assert benjamini_hochberg([]) == ()


def test_benjamini_hochberg_refuses_p_values_outside_unit_interval_and_bad_alpha() -> None:
    with pytest.raises(ValueError, match=re.escape("p-value 1 is 1.5")):
        benjamini_hochberg([0.1, 1.5])
    with pytest.raises(ValueError, match=re.escape("alpha must be in (0, 1), got 0")):
        benjamini_hochberg([0.1], alpha=0)


# Decision and persistence


def test_decide_feature_drift_below_min_rows_is_level_none_with_a_reason() -> None:
    decision = decide_feature_drift([100, 100], [0, 40], min_rows=50)
    assert decision.level == "none" and not decision.enough_data
    assert decision.rows == 40
    assert math.isnan(decision.psi) and math.isnan(decision.js_divergence)
    assert decision.reason == "40 rows in the window, fewer than min_rows=50"


def test_decide_feature_drift_on_a_large_shift_is_act_from_psi() -> None:
    reference, current = [500, 500], [250, 750]
    decision = decide_feature_drift(reference, current, min_rows=1000)
    assert decision.enough_data and decision.rows == 1000
    assert decision.psi == psi(reference, current)
    assert decision.js_divergence == js_divergence(reference, current)
    assert decision.level == "act"  # psi ~ 0.2740


def test_decide_feature_drift_on_identical_counts_is_none_with_enough_data() -> None:
    decision = decide_feature_drift([300, 300], [300, 300])
    assert decision.enough_data and decision.level == "none" and decision.psi == 0.0


def test_decide_feature_drift_refuses_invalid_min_rows() -> None:
    with pytest.raises(ValueError, match=re.escape("min_rows must be an integer >= 1, got 0")):
        decide_feature_drift([1, 1], [1, 1], min_rows=0)


def test_persistent_drift_is_detected_after_k_consecutive_windows() -> None:
    detector = PersistentDrift(k=3)
    seen = []
    for reached in (True, True, False, True, True, True, True, False):
        detector.update(reached)
        seen.append(detector.drift_detected)
    assert seen == [False, False, False, False, False, True, True, False]


def test_persistent_drift_with_k_1_follows_the_latest_window() -> None:
    detector = PersistentDrift(k=1)
    detector.update(True)
    assert detector.drift_detected
    detector.update(False)
    assert not detector.drift_detected


@pytest.mark.parametrize("k", [0, -1, 2.0, True])
def test_persistent_drift_refuses_k_that_is_not_a_positive_integer(k: object) -> None:
    with pytest.raises(ValueError, match=re.escape("k must be an integer >= 1")):
        PersistentDrift(k=k)  # type: ignore[arg-type]
