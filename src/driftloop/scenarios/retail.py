"""The retail demand scenario of the specification's Q5.

Daily unit sales for stores x products with weekly and yearly seasonality, a slow
trend, price and promotion effects, holidays, negative-binomial noise and a regime
shift on a date (the pandemic) for a chosen share of stores and products.

Every random number is drawn up front from one seeded generator, in an order that
does not depend on the shift settings, and counts come from the inverse CDF of fixed
uniforms. So the same seed gives identical data, and a run with the shift differs
from one without it only on and after the shift date, only for affected series.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
from scipy import stats

from driftloop.config import RetailScenarioConfig

__all__ = ["RetailData", "generate_retail", "holiday_calendar"]

PROMO_LIFT = 1.35  # display/feature effect on top of the price cut
TREND_PER_YEAR = 0.04


@dataclass(frozen=True)
class RetailData:
    """Generated sales plus the ground truth of the shift."""

    sales: pd.DataFrame
    affected_stores: tuple[int, ...]
    affected_products: tuple[int, ...]
    gaining_products: tuple[int, ...]


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    return first + timedelta(days=offset + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> date:
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def holiday_calendar(start: date, end: date) -> dict[date, float]:
    """Holidays between ``start`` and ``end`` with their demand multiplier."""
    days: dict[date, float] = {}
    for year in range(start.year, end.year + 1):
        thanksgiving = _nth_weekday(year, 11, 3, 4)
        entries = {
            date(year, 1, 1): 0.55,
            _last_weekday(year, 5, 0): 1.25,  # Memorial Day
            date(year, 7, 4): 1.4,
            _nth_weekday(year, 9, 0, 1): 1.2,  # Labor Day
            thanksgiving: 0.5,
            thanksgiving + timedelta(days=1): 1.7,  # Black Friday
            date(year, 12, 24): 1.45,
            date(year, 12, 25): 0.15,
            date(year, 12, 31): 1.3,
        }
        for offset in range(8, 1, -1):  # the run-up to Christmas
            entries.setdefault(date(year, 12, 24) - timedelta(days=offset), 1.2)
        days.update({d: m for d, m in entries.items() if start <= d <= end})
    return days


def _promo_and_price(
    rng: np.random.Generator, n_days: int, n_series: int, base_price: np.ndarray, rate: float
) -> tuple[np.ndarray, np.ndarray]:
    """Promotion flags and shelf prices, shape (days, series)."""
    starts = rng.random((n_days, n_series)) < rate
    lengths = rng.integers(3, 8, size=(n_days, n_series))
    discounts = rng.uniform(0.10, 0.35, size=(n_days, n_series))
    price_moves = rng.random((n_days, n_series)) < 1 / 75
    move_sizes = rng.normal(0.0, 0.05, size=(n_days, n_series))

    promo = np.zeros((n_days, n_series), dtype=bool)
    discount = np.zeros((n_days, n_series))
    for t, s in zip(*np.nonzero(starts), strict=True):
        end = min(n_days, t + lengths[t, s])
        fresh = ~promo[t:end, s]
        promo[t:end, s] |= True
        discount[t:end, s] = np.where(fresh, discounts[t, s], discount[t:end, s])
    shelf_factor = np.exp(np.cumsum(np.where(price_moves, move_sizes, 0.0), axis=0))
    shelf = base_price[None, :] * np.clip(shelf_factor, 0.7, 1.4)
    price = np.round(shelf * (1.0 - discount), 2)
    return promo, price


def _shift_ramp(
    cfg: RetailScenarioConfig,
    dates: pd.DatetimeIndex,
    store_order: np.ndarray,
    product_order: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The affected stores and products, and the shift's weight per (day, series): phased
    in linearly over ``ramp_days`` from its date, 0 outside the affected series."""
    shift = cfg.shift
    n_s, n_p, n_d = cfg.n_stores, cfg.n_products, cfg.days
    store_idx = np.repeat(np.arange(n_s), n_p)
    prod_idx = np.tile(np.arange(n_p), n_s)
    n_aff_s = round(shift.store_share * n_s) if shift.enabled else 0
    n_aff_p = round(shift.product_share * n_p) if shift.enabled else 0
    aff_stores = np.sort(store_order[:n_aff_s])
    aff_products = np.sort(product_order[:n_aff_p])
    affected = np.isin(store_idx, aff_stores) & np.isin(prod_idx, aff_products)
    if shift.enabled:
        since = (dates - pd.Timestamp(shift.date)).days.to_numpy()
        ramp = np.clip((since + 1) / shift.ramp_days, 0.0, 1.0)[:, None]
    else:
        ramp = np.zeros((n_d, 1))
    ramp = ramp * affected[None, :]
    return aff_stores, aff_products, ramp


def generate_retail(cfg: RetailScenarioConfig) -> RetailData:
    """Generate the scenario; same ``cfg`` (seed included) gives identical output."""
    rng = np.random.default_rng(cfg.seed)
    n_s, n_p, n_d = cfg.n_stores, cfg.n_products, cfg.days
    n_series = n_s * n_p
    dates = pd.date_range(pd.Timestamp(cfg.start_date), periods=n_d, freq="D")

    # Structure of the world (drawn first, fixed order).
    store_scale = rng.lognormal(0.0, 0.35, n_s)
    product_level = rng.lognormal(np.log(18.0), 0.6, n_p)
    base_price = np.round(rng.uniform(1.5, 25.0, n_p), 2)
    elasticity = -rng.uniform(0.8, 2.2, n_p)
    weekly_amp = rng.uniform(0.05, 0.35, n_p)
    weekly_peak = rng.uniform(0.0, 7.0, n_p)
    yearly_amp = rng.uniform(0.05, 0.40, n_p)
    yearly_phase = rng.uniform(0.0, 365.25, n_p)
    store_order = rng.permutation(n_s)
    product_order = rng.permutation(n_p)
    gains = rng.random(n_p) < 0.5
    promo, price = _promo_and_price(
        rng, n_d, n_series, np.tile(base_price, n_s), cfg.promo_start_rate
    )
    uniforms = rng.random((n_d, n_series))

    store_idx = np.repeat(np.arange(n_s), n_p)  # series s = store * n_p + product
    prod_idx = np.tile(np.arange(n_p), n_s)
    dow = dates.dayofweek.to_numpy()[:, None]
    doy = dates.dayofyear.to_numpy()[:, None]
    years = (np.arange(n_d) / 365.25)[:, None]

    weekly_angle = 2 * np.pi * (dow - weekly_peak[prod_idx]) / 7
    yearly_angle = 2 * np.pi * (doy - yearly_phase[prod_idx]) / 365.25
    weekly = np.exp(weekly_amp[prod_idx] * np.cos(weekly_angle))
    yearly = np.exp(yearly_amp[prod_idx] * np.sin(yearly_angle))
    holidays = holiday_calendar(dates[0].date(), dates[-1].date())
    holiday_mult = np.array([holidays.get(d.date(), 1.0) for d in dates])[:, None]

    # The shift: phased in linearly over ramp_days from its date, for affected series.
    shift = cfg.shift
    aff_stores, aff_products, ramp = _shift_ramp(cfg, dates, store_order, product_order)
    target_level = np.where(gains, shift.demand_up_multiplier, shift.demand_down_multiplier)
    level_shift = np.exp(ramp * np.log(target_level[prod_idx])[None, :])
    elasticity_scale = 1.0 + ramp * (shift.elasticity_multiplier - 1.0)
    elasticity_now = elasticity[prod_idx][None, :] * elasticity_scale

    rel_price = price / np.tile(base_price, n_s)[None, :]
    mean = (
        product_level[prod_idx][None, :]
        * store_scale[store_idx][None, :]
        * weekly
        * yearly
        * np.exp(TREND_PER_YEAR * years)
        * holiday_mult
        * rel_price**elasticity_now
        * np.where(promo, PROMO_LIFT * (1.0 + ramp * (shift.promo_lift_multiplier - 1.0)), 1.0)
        * level_shift
    )
    k = cfg.dispersion
    units = stats.nbinom.ppf(uniforms, k, k / (k + mean)).astype(np.int64)

    sales = pd.DataFrame(
        {
            "date": np.repeat(dates.to_numpy(), n_series),
            "store_id": np.tile(store_idx, n_d).astype(np.int64),
            "product_id": np.tile(prod_idx, n_d).astype(np.int64),
            "units": units.reshape(-1),
            "price": price.reshape(-1),
            "base_price": np.tile(np.tile(base_price, n_s), n_d),
            "promo": promo.reshape(-1).astype(np.int64),
            "is_holiday": np.repeat(holiday_mult[:, 0] != 1.0, n_series).astype(np.int64),
        }
    )
    return RetailData(
        sales=sales,
        affected_stores=tuple(int(s) for s in aff_stores),
        affected_products=tuple(int(p) for p in aff_products),
        gaining_products=tuple(int(p) for p in aff_products if gains[p]),
    )
