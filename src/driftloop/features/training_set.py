"""Training sets: labels from the raw events joined point-in-time with the features."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd

from driftloop.errors import DataError
from driftloop.features.engineering import TIMESTAMP_COLUMN
from driftloop.features.store import FeatureStore

__all__ = ["build_training_set", "label_rows"]


def label_rows(
    store: FeatureStore,
    events: pd.DataFrame,
    start: date,
    end: date,
    entities: Sequence[tuple[Any, ...]] | None = None,
) -> pd.DataFrame:
    """Entity rows (keys, event time, label) for the days ``start``..``end`` inclusive.

    Rows also carry the features their events carry (``ProjectLayout.event_rows``).
    """
    if end < start:
        raise DataError(f"--end {end} is before --start {start}: swap them")
    layout = store.layout
    keys = list(store.keys)
    days = pd.Series(pd.to_datetime(layout.event_days(events)), index=events.index)
    first, last = days.min().date(), days.max().date()
    in_range = (days >= pd.Timestamp(start)) & (days <= pd.Timestamp(end))
    if not in_range.any():
        raise DataError(
            f"no events between {start} and {end}: the data covers {first} to {last}; "
            "choose dates inside that range"
        )
    rows = layout.event_rows(events.loc[in_range])
    if entities is not None:
        for entity in entities:
            hit = pd.Series(True, index=rows.index)
            for k, v in zip(keys, entity, strict=True):
                hit &= rows[k] == v
            if not hit.any():
                named = ", ".join(f"{k}={v}" for k, v in zip(keys, entity, strict=True))
                raise DataError(
                    f"entity {named} has no rows between {start} and {end}; pick one present "
                    "in the raw events"
                )
        wanted = pd.MultiIndex.from_tuples(list(entities), names=keys)
        rows = rows[pd.MultiIndex.from_frame(rows[keys]).isin(wanted)]
    extra = [c for c in rows.columns if c not in (*keys, TIMESTAMP_COLUMN, layout.label)]
    return rows[[*keys, TIMESTAMP_COLUMN, layout.label, *extra]].reset_index(drop=True)


def build_training_set(
    store: FeatureStore,
    start: date,
    end: date,
    entities: Sequence[tuple[Any, ...]] | None = None,
) -> pd.DataFrame:
    """Labels for ``start``..``end`` with the features valid at each row's time."""
    rows = label_rows(store, store.layout.read_events(), start, end, entities)
    return store.historical(rows)
