"""The retail scenario's layout: daily sales per (store, product), features by
``compute_features``, Feast definitions by ``build_definitions``.

A request asks the forecast of stored entities: their features are the online store's
rows, with the request-time values (price, promotion, calendar) a request may send.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from driftloop.errors import DataError
from driftloop.features.definitions import build_definitions
from driftloop.features.engineering import (
    TIMESTAMP_COLUMN,
    FeatureLayout,
    compute_features,
    validate_sales,
)

__all__ = ["RetailLayout"]


@dataclass(frozen=True)
class RetailLayout(FeatureLayout):
    """The retail scenario's features (``FeatureLayout``) in the project at ``root``."""

    root: Path
    ttl_days: int
    numeric_fields: ClassVar[frozenset[str]] = frozenset()
    activity_state: ClassVar[tuple[str, ...]] = ()
    warmup_days: ClassVar[int] = 0
    event_requests: ClassVar[bool] = False

    @property
    def raw_events_path(self) -> Path:
        return self.root / "data" / "raw" / "sales.parquet"

    @property
    def offline_path(self) -> Path:
        return self.root / "data" / "features" / "store_product_daily.parquet"

    def definitions(self) -> list[Any]:
        return build_definitions(self, self.offline_path, self.ttl_days)

    def read_events(self) -> pd.DataFrame:
        path = self.raw_events_path
        if not path.is_file():
            raise DataError(
                f"raw sales file {path} is missing: regenerate the project with "
                f"`driftloop init {self.root} --scenario retail`, or restore the file"
            )
        try:
            sales = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise DataError(f"{path}: not a readable Parquet file ({exc}); restore it") from exc
        validate_sales(sales, str(path))
        return sales

    def event_days(self, events: pd.DataFrame) -> pd.Series:
        days: pd.Series = pd.to_datetime(events["date"]).dt.date
        return days

    def feature_rows(
        self, events: pd.DataFrame, entities: Sequence[tuple[Any, ...]] | None = None
    ) -> pd.DataFrame:
        return compute_features(events, self, entities)

    def side_tables(self, events: pd.DataFrame) -> dict[Path, pd.DataFrame]:
        return {}

    def event_rows(self, events: pd.DataFrame) -> pd.DataFrame:
        """Keys, the day's midnight (UTC) and the day's units: the row is the forecast."""
        days = pd.Series(pd.to_datetime(self.event_days(events)), index=events.index)
        rows = events[[*self.entity_keys, self.label]].copy()
        rows[TIMESTAMP_COLUMN] = days.dt.tz_localize("UTC")
        return rows[[*self.entity_keys, TIMESTAMP_COLUMN, self.label]]

    def with_realtime(self, joined: pd.DataFrame) -> pd.DataFrame:
        return joined

    def online_frame(
        self,
        stored: pd.DataFrame,
        keys: Sequence[tuple[Any, ...]],
        sent: Sequence[Mapping[str, Any]],
        event_time: datetime,
        push: Callable[[str, pd.DataFrame], None],
    ) -> pd.DataFrame:
        """The stored rows, with the request-time values each entity sent."""
        for r, values in enumerate(sent):
            for name, value in values.items():
                stored.loc[r, name] = value
        return stored
