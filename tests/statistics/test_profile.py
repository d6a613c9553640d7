from __future__ import annotations

import numpy as np
import pytest

from driftloop.statistics.profile import (
    ReferenceProfile,
    bin_counts,
    build_profile,
    profile_column,
)


def test_bin_counts_worked_example() -> None:
    # Bins: (-inf, 1], (1, 2], (2, inf)
    counts, missing = bin_counts([0.5, 1.0, 1.5, 2.0, 7.0, np.nan], [1.0, 2.0])
    assert counts == [2, 2, 1]
    assert missing == 1


def test_continuous_column_gets_quantile_bins_of_equal_mass() -> None:
    values = np.random.default_rng(0).normal(size=10_000)
    col = profile_column(values, 10)
    assert not col.discrete and len(col.edges) == 9
    assert all(abs(c - 1000) <= 1 for c in col.counts)
    assert col.mean == pytest.approx(values.mean())


def test_discrete_column_gets_one_bin_per_value() -> None:
    col = profile_column([0, 1, 1, 2, 2, 2, 6], 10)
    assert col.discrete
    assert col.edges == (0.5, 1.5, 4.0)
    assert col.counts == (1, 2, 3, 1)


def test_all_missing_column_is_profiled_not_refused() -> None:
    col = profile_column([np.nan, np.nan], 5)
    assert col.missing == 2 and col.counts == (0,)


def test_counts_merge_by_addition() -> None:
    rng = np.random.default_rng(2)
    col = profile_column(rng.normal(size=1000), 10)
    a, b = rng.normal(size=300), rng.normal(size=700)
    ca, _ = bin_counts(a, col.edges)
    cb, _ = bin_counts(b, col.edges)
    cab, _ = bin_counts(np.concatenate([a, b]), col.edges)
    assert [x + y for x, y in zip(ca, cb, strict=True)] == cab


def test_profile_survives_a_json_round_trip_exactly() -> None:
    rng = np.random.default_rng(3)
    profile = build_profile(
        {"x": rng.normal(size=500), "d": rng.integers(0, 4, 500).astype(float)},
        rng.gamma(2.0, size=500),
        bins=10,
    )
    again = ReferenceProfile.from_json(profile.to_json())
    assert again == profile
    assert again.features["x"].edges == profile.features["x"].edges


def test_unknown_profile_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format 99"):
        ReferenceProfile.from_json('{"format": 99}')
