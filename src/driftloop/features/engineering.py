"""The one feature-engineering function: raw daily sales in, feature rows out.

A feature row for (store, product, day t) carries ``event_timestamp = t`` (midnight
UTC) and holds only what is known at t: the sales of day d become known at
d + label delay, while price, promotion and calendar of day t are planned ahead and
known at t. Training (offline store, point-in-time join) and serving (online store)
both read rows made here, so no feature is computed twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import pandas as pd

from driftloop.errors import DataError

__all__ = [
    "ENTITY_KEYS",
    "RAW_COLUMNS",
    "TIMESTAMP_COLUMN",
    "FeatureLayout",
    "compute_features",
    "validate_sales",
]

ENTITY_KEYS = ("store_id", "product_id")
TIMESTAMP_COLUMN = "event_timestamp"
RAW_COLUMNS = (
    "date",
    "store_id",
    "product_id",
    "units",
    "price",
    "base_price",
    "promo",
    "is_holiday",
)
PRICE_CHANGE_DAYS = 7


@dataclass(frozen=True)
class FeatureLayout:
    """Names of the features, grouped by feature view, derived from the config."""

    lags_days: tuple[int, ...]
    rolling_windows_days: tuple[int, ...]
    label_delay_days: int
    entity_keys: ClassVar[tuple[str, ...]] = ENTITY_KEYS
    entity_types: ClassVar[Mapping[str, str]] = MappingProxyType(
        dict.fromkeys(ENTITY_KEYS, "int64")
    )
    label: ClassVar[str] = "units"
    feature_service: ClassVar[str] = "demand_features"
    request_fields: ClassVar[tuple[str, ...]] = ()

    @property
    def nullable_features(self) -> frozenset[str]:
        """May be missing when served: a new series has no sales history yet."""
        return frozenset(self.sales_history)

    @property
    def request_time_features(self) -> frozenset[str]:
        """Known ahead and stored, but a request may send its own values."""
        return frozenset(self.pricing + self.calendar)

    @property
    def sales_history(self) -> tuple[str, ...]:
        lags = tuple(f"units_lag_{k}" for k in self.lags_days)
        rolling = tuple(
            name
            for w in self.rolling_windows_days
            for name in (f"units_mean_{w}d", f"units_std_{w}d")
        )
        return lags + rolling

    @property
    def pricing(self) -> tuple[str, ...]:
        return ("price", "relative_price", "promo", f"price_change_{PRICE_CHANGE_DAYS}d")

    @property
    def calendar(self) -> tuple[str, ...]:
        return ("day_of_week", "day_of_month", "month", "day_of_year", "is_holiday")

    @property
    def integer_features(self) -> frozenset[str]:
        return frozenset({"promo", *self.calendar})

    @property
    def all_features(self) -> tuple[str, ...]:
        return self.sales_history + self.pricing + self.calendar

    def views(self) -> dict[str, tuple[str, ...]]:
        """Feature view name -> feature names."""
        return {
            "sales_history": self.sales_history,
            "pricing": self.pricing,
            "calendar": self.calendar,
        }


def validate_sales(sales: pd.DataFrame, source: str) -> None:
    """Raise DataError naming ``source`` if the raw sales table is unusable."""
    missing = [c for c in RAW_COLUMNS if c not in sales.columns]
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; raw sales need {list(RAW_COLUMNS)}"
        )
    if sales.empty:
        raise DataError(f"{source}: has no rows; regenerate it with `driftloop init`")
    keys = [*ENTITY_KEYS, "date"]
    dupes = sales.duplicated(keys)
    if dupes.any():
        first = sales.loc[dupes, keys].iloc[0].to_dict()
        raise DataError(
            f"{source}: {int(dupes.sum())} duplicate (store_id, product_id, date) rows, "
            f"first {first}; keep one row per store, product and day"
        )
    for col in ("units", "price"):
        bad = sales[col].isna() | (sales[col] < 0)
        if bad.any():
            raise DataError(
                f"{source}: column {col!r} has {int(bad.sum())} missing or negative value(s); "
                "fix or drop those rows"
            )


def _complete_daily_grid(sales: pd.DataFrame) -> pd.DataFrame:
    """One row per series per day from its first to its last day (gaps become NaN)."""
    frame = sales.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.tz_localize(None).dt.normalize()
    spans = frame.groupby(list(ENTITY_KEYS))["date"].agg(["min", "max"])
    lengths = ((spans["max"] - spans["min"]).dt.days + 1).to_numpy()
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    index = pd.MultiIndex.from_arrays(
        [
            np.repeat(spans.index.get_level_values(0).to_numpy(), lengths),
            np.repeat(spans.index.get_level_values(1).to_numpy(), lengths),
            np.repeat(spans["min"].to_numpy(), lengths) + offsets * np.timedelta64(1, "D"),
        ],
        names=[*ENTITY_KEYS, "date"],
    )
    return frame.set_index([*ENTITY_KEYS, "date"]).reindex(index).reset_index()


def compute_features(
    sales: pd.DataFrame,
    layout: FeatureLayout,
    entities: Sequence[tuple[int, int]] | None = None,
) -> pd.DataFrame:
    """Feature rows for every (store, product, day) in ``sales``.

    ``entities`` limits the work to some series; each series is computed from its
    whole history, so the values are identical to a full run.
    """
    if entities is not None:
        wanted = pd.MultiIndex.from_tuples(list(entities), names=list(ENTITY_KEYS))
        sales = sales[pd.MultiIndex.from_frame(sales[list(ENTITY_KEYS)]).isin(wanted)]
    frame = _complete_daily_grid(sales).sort_values([*ENTITY_KEYS, "date"], kind="stable")
    groups = frame.groupby(list(ENTITY_KEYS), sort=False)

    out = frame[list(ENTITY_KEYS)].copy()
    out[TIMESTAMP_COLUMN] = frame["date"].dt.tz_localize("UTC")
    units = frame["units"].astype("float64")
    unit_groups = units.groupby([frame[k] for k in ENTITY_KEYS], sort=False)
    for k in layout.lags_days:
        out[f"units_lag_{k}"] = unit_groups.shift(k)
    known = unit_groups.shift(layout.label_delay_days)
    known_groups = known.groupby([frame[k] for k in ENTITY_KEYS], sort=False)
    for w in layout.rolling_windows_days:
        min_periods = max(2, w // 2)
        rolling = known_groups.rolling(w, min_periods=min_periods)
        out[f"units_mean_{w}d"] = rolling.mean().reset_index(level=[0, 1], drop=True)
        out[f"units_std_{w}d"] = rolling.std().reset_index(level=[0, 1], drop=True)

    price = frame["price"].astype("float64")
    out["price"] = price
    out["relative_price"] = price / frame["base_price"].astype("float64")
    out["promo"] = frame["promo"].fillna(0).astype("int64")
    previous = groups["price"].shift(PRICE_CHANGE_DAYS).astype("float64")
    out[f"price_change_{PRICE_CHANGE_DAYS}d"] = price / previous - 1.0

    day = frame["date"]
    out["day_of_week"] = day.dt.dayofweek.astype("int64")
    out["day_of_month"] = day.dt.day.astype("int64")
    out["month"] = day.dt.month.astype("int64")
    out["day_of_year"] = day.dt.dayofyear.astype("int64")
    out["is_holiday"] = frame["is_holiday"].fillna(0).astype("int64")

    # A day with no raw row (a gap) has no price: it gets no feature row.
    out = out[np.isfinite(price.to_numpy())]
    return out.reset_index(drop=True)
