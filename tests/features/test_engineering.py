from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftloop.errors import DataError
from driftloop.features.engineering import FeatureLayout, compute_features, validate_sales

LAYOUT = FeatureLayout(lags_days=(1, 2), rolling_windows_days=(3,), label_delay_days=1)


def tiny_sales(units: list[int], store: int = 0, product: int = 0) -> pd.DataFrame:
    days = pd.date_range("2020-01-01", periods=len(units), freq="D")
    return pd.DataFrame(
        {
            "date": days,
            "store_id": store,
            "product_id": product,
            "units": units,
            "price": [10.0] * len(units),
            "base_price": 10.0,
            "promo": 0,
            "is_holiday": 0,
        }
    )


def test_worked_example_of_lags_and_rolling_stats() -> None:
    out = compute_features(tiny_sales([1, 2, 3, 4, 5]), LAYOUT)
    assert out["units_lag_1"].tolist()[1:] == [1, 2, 3, 4]
    assert out["units_lag_2"].tolist()[2:] == [1, 2, 3]
    # Day 4 (index 3) knows days 1..3 (units 1, 2, 3): mean 2, sample std 1.
    assert out.loc[3, "units_mean_3d"] == pytest.approx(2.0)
    assert out.loc[3, "units_std_3d"] == pytest.approx(1.0)
    # Day 5 knows days 2..4 (units 2, 3, 4).
    assert out.loc[4, "units_mean_3d"] == pytest.approx(3.0)
    assert np.isnan(out.loc[0, "units_lag_1"])
    assert str(out["event_timestamp"].dt.tz) == "UTC"


def test_longer_label_delay_shifts_the_rolling_window() -> None:
    layout = FeatureLayout(lags_days=(2,), rolling_windows_days=(2,), label_delay_days=2)
    out = compute_features(tiny_sales([1, 2, 3, 4, 5]), layout)
    # Day 5 (index 4) knows days up to 3 (units 2 and 3 in a 2-day window).
    assert out.loc[4, "units_mean_2d"] == pytest.approx(2.5)


def test_no_feature_uses_sales_not_yet_known() -> None:
    units = list(range(10, 70))
    base = compute_features(tiny_sales(units), FeatureLayout((1, 7), (7, 28), 1))
    cut = 40
    changed = units[:cut] + [u * 100 for u in units[cut:]]  # only days >= cut differ
    moved = compute_features(tiny_sales(changed), FeatureLayout((1, 7), (7, 28), 1))
    cols = [c for c in base.columns if c.startswith("units_")]
    # Rows up to and including day `cut` are built from days < cut only.
    pd.testing.assert_frame_equal(base.loc[:cut, cols], moved.loc[:cut, cols])
    assert not base.loc[cut + 1, cols].equals(moved.loc[cut + 1, cols])


def test_gap_days_become_missing_history_not_shifted_history() -> None:
    sales = tiny_sales([1, 2, 3, 4, 5]).drop(index=2)  # 2020-01-03 missing
    out = compute_features(sales, LAYOUT)
    assert len(out) == 4  # no feature row for the missing day
    day4 = out[out["event_timestamp"] == pd.Timestamp("2020-01-04", tz="UTC")].iloc[0]
    assert np.isnan(day4["units_lag_1"])  # yesterday is unknown, not day 2
    assert day4["units_lag_2"] == 2


def test_entity_subset_matches_the_full_computation() -> None:
    sales = pd.concat([tiny_sales([1, 5, 2, 8, 3, 9], s, p) for s in (0, 1) for p in (0, 1)])
    full = compute_features(sales, LAYOUT)
    part = compute_features(sales, LAYOUT, entities=[(1, 0)])
    expected = full[(full["store_id"] == 1) & (full["product_id"] == 0)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part, expected)


def test_price_and_calendar_features() -> None:
    sales = tiny_sales([1] * 10)
    sales.loc[8, "price"] = 8.0
    out = compute_features(sales, LAYOUT)
    assert out.loc[8, "relative_price"] == pytest.approx(0.8)
    assert out.loc[8, "price_change_7d"] == pytest.approx(-0.2)
    assert out.loc[0, "day_of_week"] == 2  # 2020-01-01 was a Wednesday
    assert out.loc[0, "day_of_year"] == 1


def test_validate_sales_names_missing_columns() -> None:
    with pytest.raises(DataError, match=r"sales.parquet: missing column\(s\) \['units'\]"):
        validate_sales(tiny_sales([1, 2]).drop(columns="units"), "sales.parquet")


def test_validate_sales_refuses_duplicates_and_negative_units() -> None:
    dup = pd.concat([tiny_sales([1, 2]), tiny_sales([1])])
    with pytest.raises(DataError, match="1 duplicate"):
        validate_sales(dup, "x")
    with pytest.raises(DataError, match="'units' has 1 missing or negative"):
        validate_sales(tiny_sales([1, -2]), "x")
    with pytest.raises(DataError, match="no rows"):
        validate_sales(tiny_sales([]), "x")
