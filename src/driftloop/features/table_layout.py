"""A table project's layout, read from its Feast repository (``feature_repo/features.py``).

A request is one event: its fields become event features through the repository's
``transform_events``, beside the entity's history from the online store and, with
real-time features, its activity state, stepped and pushed at each event.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pandas as pd

from driftloop.errors import DataError
from driftloop.features.table import (
    CALENDAR_FEATURES,
    REPO_DIRNAME,
    REPO_MODULE,
    TIMESTAMP_COLUMN,
    load_repo,
)

__all__ = ["TableLayout"]


@dataclass(frozen=True)
class TableLayout:
    """The feature layout of a table project, read from its Feast repository module."""

    root: Path
    label_delay: timedelta
    columns: tuple[str, ...] = ()  # the columns the imported table must hold
    event_requests: ClassVar[bool] = True
    request_time_features: ClassVar[frozenset[str]] = frozenset()

    @staticmethod
    def module_path(root: Path) -> Path:
        """The repository module of the project at ``root``."""
        return root / REPO_DIRNAME / REPO_MODULE

    @property
    def raw_events_path(self) -> Path:
        return self.root / "data" / "raw" / "events.parquet"

    @property
    def offline_path(self) -> Path:
        return self.root / "data" / "features" / "history.parquet"

    @property
    def activity_path(self) -> Path:
        """The offline activity states (the real-time features' source)."""
        return self.root / "data" / "features" / "activity.parquet"

    @cached_property
    def module(self) -> ModuleType:
        return load_repo(self.root)

    @property
    def entity_keys(self) -> tuple[str, ...]:
        return tuple(self.module.ENTITY_KEYS)

    @property
    def entity_types(self) -> Mapping[str, str]:
        types: Mapping[str, str] = getattr(self.module, "ENTITY_TYPES", {})
        return {k: types.get(k, "int64") for k in self.entity_keys}

    @property
    def label(self) -> str:
        return str(self.module.TARGET)

    @property
    def event_features(self) -> tuple[str, ...]:
        return tuple(self.module.EVENT_FEATURES)

    @property
    def history(self) -> tuple[str, ...]:
        return tuple(self.module.HISTORY_FEATURES)

    @property
    def request_fields(self) -> tuple[str, ...]:
        """The raw fields a prediction request carries for each entity."""
        return tuple(getattr(self.module, "REQUEST_FIELDS", ()))

    @property
    def numeric_fields(self) -> frozenset[str]:
        """The request fields that are numbers (``NUMERIC``); the rest are categories."""
        return frozenset(getattr(self.module, "NUMERIC", ()))

    @property
    def activity_state(self) -> tuple[str, ...]:
        """The stored activity state (not model features); empty without real-time features."""
        return tuple(getattr(self.module, "ACTIVITY_STATE", ()))

    @property
    def warmup_days(self) -> int:
        """Days from the table's first event until every window is full: the longest history
        window or activity time scale (``WARMUP_DAYS`` in the module overrides). Training
        leaves these days out: a 28-day count in the table's first weeks is small because
        the data is young, not because the entity is quiet, and serving never sees that."""
        given = getattr(self.module, "WARMUP_DAYS", None)
        if given is not None:
            return int(given)
        spans = [w.total_seconds() for w in getattr(self.module, "HISTORY_WINDOWS", ())]
        spans += [float(s) for s in getattr(self.module, "ACTIVITY_SCALES", {}).values()]
        return math.ceil(max(spans, default=0.0) / 86400)

    @property
    def realtime(self) -> tuple[str, ...]:
        """The real-time model features, computed from the activity state at event time."""
        return tuple(getattr(self.module, "REALTIME_FEATURES", ()))

    @property
    def all_features(self) -> tuple[str, ...]:
        return self.event_features + self.history + self.realtime

    @property
    def integer_features(self) -> frozenset[str]:
        return frozenset(getattr(self.module, "INTEGER_FEATURES", ()))

    @property
    def nullable_features(self) -> frozenset[str]:
        """May be missing when served: an entity without known targets has no history."""
        return (
            frozenset(self.history)
            | frozenset(self.realtime)
            | frozenset(getattr(self.module, "NULLABLE_FEATURES", ()))
        )

    @property
    def calendar(self) -> tuple[str, ...]:
        return tuple(n for n in self.event_features if n in CALENDAR_FEATURES)

    def views(self) -> dict[str, tuple[str, ...]]:
        views = [self.module.history_view]
        if self.activity_state:
            views.append(self.module.activity_view)
        # ``features``, not ``schema``: Feast's apply adds the entity columns to the schema
        # of the very object it was given.
        return {view.name: tuple(f.name for f in view.features) for view in views}

    @property
    def push_source(self) -> str:
        """The Feast push source the server writes activity states to."""
        return str(self.module.activity_push.name)

    def definitions(self) -> list[Any]:
        """The Feast objects the repository module defines (entities, source, views, service)."""
        from feast import Entity, FeatureService, FeatureView
        from feast.data_source import DataSource

        found: list[Any] = []
        for value in vars(self.module).values():
            kinds = Entity | DataSource | FeatureView | FeatureService
            if isinstance(value, kinds) and not any(value is f for f in found):
                found.append(value)
        return found

    @property
    def feature_service(self) -> str:
        return str(self.module.feature_service.name)

    def transform(self, events: pd.DataFrame) -> pd.DataFrame:
        """The event features of ``events`` through the repository's ``transform_events``."""
        out = self._call("transform_events", events)
        return self._listed(
            out, "transform_events", "EVENT_FEATURES", self.event_features, events.index
        )

    def _call(self, name: str, *args: Any) -> Any:
        """The repository's function ``name``: failures name the file and the function."""
        where = self.root / REPO_DIRNAME / REPO_MODULE
        function = getattr(self.module, name, None)
        if function is None:
            raise DataError(f"{where}: defines no {name}; driftloop needs it (see its comments)")
        try:
            return function(*args)
        except Exception as exc:
            raise DataError(f"{where}: {name} failed: {type(exc).__name__}: {exc}") from exc

    def _listed(
        self,
        out: pd.DataFrame,
        function: str,
        listing: str,
        names: Sequence[str],
        index: pd.Index,
    ) -> pd.DataFrame:
        """The columns ``names`` (as listed in ``listing``) of ``function``'s result."""
        missing = [n for n in names if n not in out.columns]
        if missing:
            raise DataError(
                f"{self.root / REPO_DIRNAME / REPO_MODULE}: {function} returned no "
                f"column(s) {missing} listed in {listing}; return them or remove them there"
            )
        chosen: pd.DataFrame = out[list(names)].astype("float64")
        return chosen.set_axis(index)

    def activity_rows(self, events: pd.DataFrame) -> pd.DataFrame:
        """The offline activity table of ``events`` (the module's ``activity_rows``)."""
        out: pd.DataFrame = self._call("activity_rows", events)
        return out

    def update_activity(
        self, states: pd.DataFrame, events: pd.DataFrame
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Online: the state each event sees and the states to push (``update_activity``)."""
        seeing, pushed = self._call("update_activity", states, events)
        return seeing, pushed

    def realtime_features(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The real-time features of rows holding an event and the state it sees."""
        out = self._call("realtime_features", frame)
        return self._listed(
            out, "realtime_features", "REALTIME_FEATURES", self.realtime, frame.index
        )

    def history_rows(self, events: pd.DataFrame) -> pd.DataFrame:
        """The offline history table of ``events`` through the module's ``history_rows``
        (driftloop's ``history_features`` unless the user replaced it)."""
        make = getattr(self.module, "history_rows", None)
        if make is None:
            raise DataError(f"{self.root / REPO_DIRNAME / REPO_MODULE}: defines no history_rows")
        out: pd.DataFrame = make(events)
        return out

    def read_events(self) -> pd.DataFrame:
        path = self.raw_events_path
        if not path.is_file():
            raise DataError(
                f"the imported table {path} is missing: restore it, or make the project again "
                "with `driftloop init DIR --data ...`"
            )
        try:
            events = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise DataError(f"{path}: not a readable Parquet file ({exc}); restore it") from exc
        missing = [c for c in self.columns if c not in events]
        if missing:
            raise DataError(f"{path}: lacks column(s) {missing}; restore the imported table")
        return events

    def event_days(self, events: pd.DataFrame) -> pd.Series:
        days: pd.Series = events[TIMESTAMP_COLUMN].dt.tz_convert("UTC").dt.date
        return days

    def feature_rows(
        self, events: pd.DataFrame, entities: Sequence[tuple[Any, ...]] | None = None
    ) -> pd.DataFrame:
        """The offline history table (``history_rows``) of the events of ``entities``."""
        if entities is not None:
            keys = list(self.entity_keys)
            wanted = pd.MultiIndex.from_tuples(list(entities), names=keys)
            events = events[pd.MultiIndex.from_frame(events[keys]).isin(wanted)]
        return self.history_rows(events)

    def side_tables(self, events: pd.DataFrame) -> dict[Path, pd.DataFrame]:
        """The offline activity states, with real-time features."""
        return {self.activity_path: self.activity_rows(events)} if self.activity_state else {}

    def event_rows(self, events: pd.DataFrame) -> pd.DataFrame:
        """Keys, event time, target, and the event features (``transform_events``)."""
        rows = events[[*self.entity_keys, TIMESTAMP_COLUMN, self.label]]
        return rows.join(self.transform(events))

    def with_realtime(self, joined: pd.DataFrame) -> pd.DataFrame:
        """Each row's time is its event's: the real-time features of the state it saw."""
        return joined.join(self.realtime_features(joined)) if self.activity_state else joined

    def online_frame(
        self,
        stored: pd.DataFrame,
        keys: Sequence[tuple[Any, ...]],
        sent: Sequence[Mapping[str, Any]],
        event_time: datetime,
        push: Callable[[str, pd.DataFrame], None],
    ) -> pd.DataFrame:
        """The event features of the sent fields beside the entity's history (missing for
        an entity never seen), and its real-time features from its activity state, whose
        update is pushed back."""
        raw = pd.DataFrame(list(sent), columns=list(self.request_fields))
        raw[TIMESTAMP_COLUMN] = pd.Timestamp(event_time).tz_convert("UTC")
        for j, k in enumerate(self.entity_keys):
            raw[k] = [key[j] for key in keys]
        events = self.transform(raw)
        frame = pd.concat(
            [
                stored.drop(columns=list(events.columns), errors="ignore"),
                events.reset_index(drop=True),
            ],
            axis=1,
        )
        state = list(self.activity_state)
        if state:
            seeing, pushed = self.update_activity(frame.reindex(columns=state), raw)
            seen = events.join(seeing).assign(**{TIMESTAMP_COLUMN: raw[TIMESTAMP_COLUMN]})
            frame = frame.join(self.realtime_features(seen))
            push(self.push_source, pushed)
        frame[TIMESTAMP_COLUMN] = frame[TIMESTAMP_COLUMN].fillna(raw[TIMESTAMP_COLUMN])
        return frame
