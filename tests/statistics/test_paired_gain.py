"""The paired gain test over days: SciPy's one-sample t-test on the days' differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from driftloop.statistics.paired import paired_gain


def test_days_are_the_units_and_scipy_agrees() -> None:
    rng = np.random.default_rng(7)
    days = np.repeat(np.arange(7), 20)
    champion = rng.gamma(2.0, 1.0, days.size)
    candidate = champion - 0.1 + rng.normal(0.0, 0.3, days.size)
    found = paired_gain(champion, candidate, days)
    per_day = np.bincount(days, weights=champion - candidate)
    expected = stats.ttest_1samp(per_day, 0.0, alternative="greater").pvalue
    assert found.groups == 7 and found.rows == 140
    assert found.p_value == pytest.approx(expected, rel=1e-9)
    assert found.relative == pytest.approx((champion.sum() - candidate.sum()) / champion.sum())


def test_a_gain_on_correlated_rows_is_judged_by_its_days() -> None:
    # Each day shifts both models' rows alike plus a day-wide shock to the difference: 20
    # rows a day look like 140 independent rows to a row-level test, not to this one.
    rng = np.random.default_rng(3)
    days = np.repeat(np.arange(7), 20)
    shock = rng.normal(0.0, 1.0, 7)[days]
    champion = np.full(days.size, 5.0)
    candidate = champion - 0.3 + shock + rng.normal(0.0, 0.05, days.size)
    by_rows = stats.ttest_1samp(champion - candidate, 0.0, alternative="greater").pvalue
    by_days = paired_gain(champion, candidate, days).p_value
    assert by_rows < 0.05 < by_days


def test_worked_edges() -> None:
    # Every day the same gain: no spread to weigh, p 0; the same loss: p 1.
    assert paired_gain([2.0, 2.0, 2.0], [1.0, 1.0, 1.0], ["a", "b", "c"]).p_value == 0.0
    assert paired_gain([1.0, 1.0, 1.0], [2.0, 2.0, 2.0], ["a", "b", "c"]).p_value == 1.0
    two_days = paired_gain([2.0, 2.0], [1.0, 1.0], [1, 2])
    assert two_days.groups == 2 and math.isnan(two_days.p_value)
    skipped = paired_gain([2.0, np.nan, 2.0, 2.0], [1.0, 1.0, np.inf, 1.0], [1, 2, 3, 4])
    assert skipped.rows == 2 and skipped.groups == 2
    empty = paired_gain([], [], [])
    assert empty.groups == 0 and math.isnan(empty.p_value) and math.isnan(empty.relative)
    with pytest.raises(ValueError, match="one value per row"):
        paired_gain([1.0], [1.0, 2.0], [1, 2])
