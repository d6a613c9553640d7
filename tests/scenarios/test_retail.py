from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from driftloop.config import RetailScenarioConfig
from driftloop.scenarios.retail import generate_retail, holiday_calendar

BASE = {"n_stores": 4, "n_products": 5, "days": 400, "start_date": date(2019, 1, 1)}
SHIFT = date(2019, 9, 1)


def scenario(seed: int = 3, **changes: object) -> RetailScenarioConfig:
    data = {**BASE, "seed": seed, "shift": {"date": SHIFT}}
    data.update(changes)
    return RetailScenarioConfig.model_validate(data)


def test_same_seed_gives_identical_data() -> None:
    a, b = generate_retail(scenario()), generate_retail(scenario())
    pd.testing.assert_frame_equal(a.sales, b.sales)
    assert a.affected_products == b.affected_products


def test_different_seed_gives_different_data() -> None:
    a, b = generate_retail(scenario(3)), generate_retail(scenario(4))
    assert not a.sales["units"].equals(b.sales["units"])


def test_one_row_per_store_product_day() -> None:
    sales = generate_retail(scenario()).sales
    assert len(sales) == 4 * 5 * 400
    assert not sales.duplicated(["store_id", "product_id", "date"]).any()
    assert (sales["units"] >= 0).all() and (sales["price"] > 0).all()


def test_shift_is_absent_before_its_date_and_present_after() -> None:
    shifted = generate_retail(scenario())
    calm = generate_retail(scenario(shift={"date": SHIFT, "enabled": False}))
    before = shifted.sales["date"] < pd.Timestamp(SHIFT)
    # Before the shift date the two worlds are the same to the unit.
    pd.testing.assert_frame_equal(shifted.sales[before], calm.sales[before])
    affected = shifted.sales["store_id"].isin(shifted.affected_stores) & shifted.sales[
        "product_id"
    ].isin(shifted.affected_products)
    # After it, affected series differ and unaffected ones do not.
    after = ~before
    assert not shifted.sales.loc[after & affected, "units"].equals(
        calm.sales.loc[after & affected, "units"]
    )
    pd.testing.assert_series_equal(
        shifted.sales.loc[after & ~affected, "units"], calm.sales.loc[after & ~affected, "units"]
    )


def test_shift_moves_gaining_products_up_and_the_others_down() -> None:
    data = generate_retail(scenario())
    sales = data.sales.assign(
        post=data.sales["date"] >= pd.Timestamp(SHIFT) + pd.Timedelta(days=30)
    )
    aff = sales[sales["store_id"].isin(data.affected_stores)]
    means = aff.groupby(["product_id", "post"])["units"].mean().unstack()
    ratio = means[True] / means[False]
    for product in data.affected_products:
        if product in data.gaining_products:
            assert ratio[product] > 1.3
        else:
            assert ratio[product] < 0.8


def test_shares_choose_how_many_series_are_affected() -> None:
    data = generate_retail(
        scenario(shift={"date": SHIFT, "store_share": 0.5, "product_share": 0.4})
    )
    assert len(data.affected_stores) == 2
    assert len(data.affected_products) == 2


def test_promotion_raises_sales() -> None:
    sales = generate_retail(scenario(shift={"date": SHIFT, "enabled": False})).sales
    by_promo = sales.groupby("promo")["units"].mean()
    assert by_promo[1] > 1.3 * by_promo[0]


def test_weekly_seasonality_is_present() -> None:
    sales = generate_retail(scenario(shift={"date": SHIFT, "enabled": False})).sales
    per_day = sales.groupby([sales["product_id"], sales["date"].dt.dayofweek])["units"].mean()
    spread = per_day.groupby(level=0).agg(lambda s: s.max() / s.min())
    assert (spread > 1.05).all()


def test_holiday_calendar_worked_example() -> None:
    days = holiday_calendar(date(2019, 1, 1), date(2019, 12, 31))
    assert days[date(2019, 11, 28)] == 0.5  # Thanksgiving: 4th Thursday of November
    assert days[date(2019, 11, 29)] == 1.7  # Black Friday
    assert days[date(2019, 5, 27)] == 1.25  # Memorial Day: last Monday of May
    assert days[date(2019, 9, 2)] == 1.2  # Labor Day: first Monday of September
    assert days[date(2019, 12, 25)] == 0.15


def test_holidays_show_in_the_data() -> None:
    sales = generate_retail(scenario(shift={"date": SHIFT, "enabled": False})).sales
    daily = sales.groupby("date")["units"].sum()
    assert daily[pd.Timestamp("2019-12-25")] < 0.4 * daily.median()
    assert sales.loc[sales["date"] == pd.Timestamp("2019-12-25"), "is_holiday"].eq(1).all()


@pytest.mark.parametrize("field", ["n_stores", "days"])
def test_bad_sizes_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RetailScenarioConfig.model_validate({field: 0})


def test_counts_are_overdispersed_like_real_sales() -> None:
    sales = generate_retail(scenario(shift={"date": SHIFT, "enabled": False})).sales
    resid = sales.groupby(["store_id", "product_id"])["units"].agg(["mean", "var"])
    assert (resid["var"] > resid["mean"]).mean() > 0.9
    assert np.isfinite(resid.to_numpy()).all()
