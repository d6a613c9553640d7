"""Training sets: labels from the raw events joined point-in-time with the features."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd

from driftloop.errors import DataError
from driftloop.features.engineering import ENTITY_KEYS, TIMESTAMP_COLUMN
from driftloop.features.store import FeatureStore

__all__ = ["LABEL_COLUMN", "build_training_set", "label_rows"]

LABEL_COLUMN = "units"


def label_rows(
    sales: pd.DataFrame,
    start: date,
    end: date,
    entities: Sequence[tuple[int, int]] | None = None,
) -> pd.DataFrame:
    """Entity rows (keys, event time, label) for the days ``start``..``end`` inclusive."""
    if end < start:
        raise DataError(f"--end {end} is before --start {start}: swap them")
    days = pd.to_datetime(sales["date"]).dt.tz_localize(None).dt.normalize()
    first, last = days.min().date(), days.max().date()
    in_range = (days >= pd.Timestamp(start)) & (days <= pd.Timestamp(end))
    if not in_range.any():
        raise DataError(
            f"no sales between {start} and {end}: the data covers {first} to {last}; "
            "choose dates inside that range"
        )
    rows = sales.loc[in_range, [*ENTITY_KEYS, LABEL_COLUMN]].copy()
    rows[TIMESTAMP_COLUMN] = days[in_range].dt.tz_localize("UTC")
    if entities is not None:
        for store_id, product_id in entities:
            hit = (rows[ENTITY_KEYS[0]] == store_id) & (rows[ENTITY_KEYS[1]] == product_id)
            if not hit.any():
                raise DataError(
                    f"entity store_id={store_id}, product_id={product_id} has no rows between "
                    f"{start} and {end}; pick a store and product present in the raw sales"
                )
        wanted = pd.MultiIndex.from_tuples(list(entities), names=list(ENTITY_KEYS))
        rows = rows[pd.MultiIndex.from_frame(rows[list(ENTITY_KEYS)]).isin(wanted)]
    return rows[[*ENTITY_KEYS, TIMESTAMP_COLUMN, LABEL_COLUMN]].reset_index(drop=True)


def build_training_set(
    store: FeatureStore,
    start: date,
    end: date,
    entities: Sequence[tuple[int, int]] | None = None,
) -> pd.DataFrame:
    """Labels for ``start``..``end`` with the features valid at each row's time."""
    rows = label_rows(store.project.read_sales(), start, end, entities)
    return store.historical(rows)
