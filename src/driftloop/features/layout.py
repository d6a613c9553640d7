"""The one shape of a project's features: what every caller asks of a layout.

A project is a table of events (entity keys, a timestamp, a target) and a Feast
repository of features over it. Two implementations: the retail scenario's daily sales
(``features/retail.py``) and a table project's own repository module
(``features/table_layout.py``). ``project_layout`` picks one from the config; no other
code asks which it has.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import pandas as pd

from driftloop.features.engineering import TIMESTAMP_COLUMN
from driftloop.features.retail import RetailLayout
from driftloop.features.table_layout import TableLayout
from driftloop.project import Project

__all__ = ["ActivityPush", "ProjectLayout", "project_layout"]

# Writes updated real-time states: (Feast push source, rows) -> the online store.
ActivityPush = Callable[[str, pd.DataFrame], None]


@runtime_checkable
class ProjectLayout(Protocol):
    """A project's events and features: names, files, and the frames training and serving
    build from them."""

    @property
    def entity_keys(self) -> tuple[str, ...]:
        """The entity join keys, in order."""

    @property
    def entity_types(self) -> Mapping[str, str]:
        """Each entity key's type: ``int64`` or ``string``."""

    @property
    def label(self) -> str:
        """The target column of the events."""

    @property
    def feature_service(self) -> str:
        """The Feast feature service the models read."""

    @property
    def all_features(self) -> tuple[str, ...]:
        """The model's features, in model column order."""

    @property
    def integer_features(self) -> frozenset[str]: ...

    @property
    def nullable_features(self) -> frozenset[str]:
        """Features that may be missing when served (no history yet)."""

    @property
    def request_fields(self) -> tuple[str, ...]:
        """The raw fields a request carries for each entity (an event's own columns)."""

    @property
    def numeric_fields(self) -> frozenset[str]:
        """The request fields that are numbers (the rest are categories)."""

    @property
    def request_time_features(self) -> frozenset[str]:
        """Stored features a request may override with its own values."""

    @property
    def activity_state(self) -> tuple[str, ...]:
        """The real-time state the server steps at each event; empty without one."""

    @property
    def warmup_days(self) -> int:
        """Days from the first event until every window is full (left out of training)."""

    @property
    def event_requests(self) -> bool:
        """True: a request is one event whose fields become features, and an entity the
        online store does not know is served (without history). False: a request names
        entities whose features the online store holds, and an unknown one is refused."""

    @property
    def raw_events_path(self) -> Path:
        """The raw events, as generated or imported."""

    @property
    def offline_path(self) -> Path:
        """The offline feature table that ``apply`` writes and Feast reads."""

    def views(self) -> dict[str, tuple[str, ...]]:
        """Feature view name -> the features it stores."""

    def definitions(self) -> list[Any]:
        """The Feast objects to apply: entities, sources, views, the feature service."""

    def read_events(self) -> pd.DataFrame:
        """The raw events, validated (DataError naming the file and the fix)."""

    def event_days(self, events: pd.DataFrame) -> pd.Series:
        """The (UTC) day of each raw event."""

    def feature_rows(
        self, events: pd.DataFrame, entities: Sequence[tuple[Any, ...]] | None = None
    ) -> pd.DataFrame:
        """The offline feature table of ``events`` (only ``entities``' rows if given)."""

    def side_tables(self, events: pd.DataFrame) -> dict[Path, pd.DataFrame]:
        """Other offline tables ``apply`` writes beside the feature table, by path."""

    def event_rows(self, events: pd.DataFrame) -> pd.DataFrame:
        """Entity rows of ``events`` for a point-in-time join: keys, event time, label,
        then the features the event itself carries."""

    def with_realtime(self, joined: pd.DataFrame) -> pd.DataFrame:
        """A joined training frame with the features computed from its rows' state."""

    def online_frame(
        self,
        stored: pd.DataFrame,
        keys: Sequence[tuple[Any, ...]],
        sent: Sequence[Mapping[str, Any]],
        event_time: datetime,
        push: ActivityPush,
    ) -> pd.DataFrame:
        """The served feature rows: ``stored`` (the online store's rows, in request
        order) with what each entity ``sent``, at ``event_time``; real-time state
        updates go to ``push``."""


def project_layout(project: Project) -> ProjectLayout:
    """The layout of ``project``: its own table's repository (``init --data``), else the
    retail scenario's."""
    data = project.config.data
    if data is None:
        return RetailLayout(
            lags_days=project.config.features.lags_days,
            rolling_windows_days=project.config.features.rolling_windows_days,
            label_delay_days=project.config.labels.delay_days,
            root=project.root,
            ttl_days=project.config.features.ttl_days,
        )
    module = TableLayout.module_path(project.root)
    try:
        stamp = module.stat().st_mtime_ns
    except FileNotFoundError:
        stamp = 0  # TableLayout.module says what is missing
    columns = (*data.entity, TIMESTAMP_COLUMN, data.target)
    return _table_layout(project.root, project.config.labels.delay_days, columns, stamp)


@functools.lru_cache(maxsize=16)
def _table_layout(
    root: Path, delay_days: int, columns: tuple[str, ...], _module_stamp: int
) -> TableLayout:
    """One layout (one import of the repository module) per project and module version:
    every store, server and controller of a process shares it."""
    return TableLayout(root, timedelta(days=delay_days), columns)
