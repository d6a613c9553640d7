"""Incremental online writes: the offline rows stamped in an interval, written straight to
the online store as Feast's materialize of that interval writes them.

Feast's ``materialize`` of a short interval costs a fixed ~60 ms or more (a DuckDB query
planned through ibis, and the registry file rewritten to record the interval) whatever
the rows; a replay materializes every simulated day. Here the offline table is read once
(again only when its file changes), the interval's rows are picked in memory, the newest
per entity kept (Feast's materialize keeps the newest per entity too), and each view's
rows go through Feast's own conversion and ``online_write_batch`` (the provider's
``ingest_df``): the same online rows, without the query and the registry write.

A real-time project's activity pushes go the same way: Feast's ``push`` lists the
registry's feature views at every push to find those the push source feeds; they are
looked up once here.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.features.engineering import TIMESTAMP_COLUMN

__all__ = ["OfflineRows", "push_rows", "push_views", "write_interval"]


class OfflineRows:
    """The offline feature table, read once and again only when its file changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._frame: pd.DataFrame | None = None

    def frame(self) -> pd.DataFrame:
        st = os.stat(self.path)
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        if self._frame is None or stamp != self._stamp:
            frame = pd.read_parquet(self.path)
            stamps = frame[TIMESTAMP_COLUMN]
            if stamps.dt.tz is None:  # Feast reads a naive stamp as UTC
                frame[TIMESTAMP_COLUMN] = stamps.dt.tz_localize("UTC")
            self._frame, self._stamp = frame, stamp
        return self._frame


def interval_rows(
    frame: pd.DataFrame, keys: list[str], since: datetime, until: datetime
) -> pd.DataFrame:
    """The rows stamped in ``since``..``until`` (both included), the newest per entity."""
    stamps = frame[TIMESTAMP_COLUMN]
    rows = frame[(stamps >= pd.Timestamp(since)) & (stamps <= pd.Timestamp(until))]
    newest = rows.sort_values(TIMESTAMP_COLUMN, kind="stable").drop_duplicates(keys, keep="last")
    return newest.reset_index(drop=True)


def write_interval(
    feast: Any,
    views: Mapping[str, Sequence[str]],
    keys: list[str],
    offline: OfflineRows,
    since: datetime,
    until: datetime,
) -> int:
    """Write each view's rows stamped in ``since``..``until`` to the online store; the
    number of entity rows written."""
    rows = interval_rows(offline.frame(), keys, since, until)
    if rows.empty:
        return 0
    provider = feast._get_provider()
    for view, names in views.items():
        definition = feast.get_feature_view(view)
        provider.ingest_df(definition, rows[[*keys, TIMESTAMP_COLUMN, *names]])
    return len(rows)


def push_views(feast: Any, source: str) -> list[Any] | None:
    """The feature views the push source ``source`` feeds, as Feast's ``push`` finds them
    (it lists the registry's views at every push: most of a real-time event's cost); None
    when there are none, or when a feature service precomputes vectors after a push: then
    Feast's ``push`` itself is the one to call."""
    from feast.data_source import PushSource

    views = [*feast.list_feature_views(), *feast.list_stream_feature_views()]
    found = [
        v
        for v in views
        if isinstance(v.stream_source, PushSource) and v.stream_source.name == source
    ]
    names = {v.name for v in found}
    precomputed = any(
        getattr(s, "precompute_online", False)
        and any(p.name in names for p in s.feature_view_projections)
        for s in feast.list_feature_services()
    )
    return found if found and not precomputed else None


def push_rows(feast: Any, views: list[Any], rows: pd.DataFrame) -> None:
    """``rows`` into each of ``views`` as Feast's ``push`` to the online store writes them
    (its ``write_to_online_store``: nothing for an empty frame or all-empty features)."""
    provider = feast._get_provider()
    for view in views:
        if rows.empty:
            warnings.warn("Cannot write empty dataframe to online store", stacklevel=2)
            continue
        names = [f.name for f in view.features]
        if names and rows[names].isnull().all().all():
            warnings.warn(
                "Cannot write dataframe with empty feature columns to online store", stacklevel=2
            )
            continue
        provider.ingest_df(view, rows)
