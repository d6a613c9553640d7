"""Features of a project made from a user's own table (``driftloop init --data``).

Each row of the table is one prediction event: entity keys, a timestamp, the columns
known when the prediction is made, and the target, which becomes known ``label delay``
later. The features come in two parts, both written by ``init`` into the project's
Feast repository (``feature_repo/features.py``), where the user may edit them:

- **event features**, computed from the row itself by ``transform_events`` (numbers as
  they are, categories as codes, calendar parts of the timestamp). Training applies it
  to the stored events; the server applies the same function to each request's fields.
- **history features**, the entity's past targets: the last known target and its mean
  and count over trailing windows. A target is known ``delay`` after its event, so the
  history changes only when a label arrives: one row per (entity, arrival time), kept
  in the offline store and materialized to the online store by Feast. Training reads it
  with a point-in-time join at each event's time, serving reads the entity's latest
  row: the same values either way.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from driftloop.errors import ConfigError, DataError

__all__ = [
    "CALENDAR_FEATURES",
    "REPO_DIRNAME",
    "REPO_MODULE",
    "TableLayout",
    "calendar_features",
    "encode_categories",
    "history_feature_names",
    "history_features",
    "load_repo",
    "window_label",
]

TIMESTAMP_COLUMN = "event_timestamp"
REPO_DIRNAME = "feature_repo"
REPO_MODULE = "features.py"
CALENDAR_FEATURES = ("hour", "day_of_week", "month", "day_of_year")


def window_label(window: timedelta) -> str:
    """``7d``, ``36h``, ``90m``: a window as it appears in feature names."""
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def history_feature_names(target: str, windows: Sequence[timedelta]) -> tuple[str, ...]:
    names = [f"{target}_last"]
    for w in windows:
        names += [f"{target}_mean_{window_label(w)}", f"{target}_count_{window_label(w)}"]
    return tuple(names)


def history_features(
    events: pd.DataFrame,
    keys: Sequence[str],
    target: str,
    delay: timedelta,
    windows: Sequence[timedelta],
    timestamp: str = TIMESTAMP_COLUMN,
) -> pd.DataFrame:
    """One row per entity and label arrival: what is known of the entity's targets then.

    The row stamped ``t + delay`` (the arrival of the label of the event at ``t``) holds
    the last known target and, per window ``w``, the mean and count of the targets of
    the entity's events in ``(t - w, t]``. Events sharing an arrival time give one row.
    """
    if delay < timedelta(0):
        raise ValueError("the label delay cannot be negative")
    cols = [*keys, timestamp, target]
    frame = events[cols].dropna(subset=[target]).sort_values([*keys, timestamp], kind="stable")
    frame = frame.reset_index(drop=True)
    out = frame[list(keys)].copy()
    out[timestamp] = frame[timestamp] + pd.Timedelta(delay)
    y = frame[target].astype("float64")
    out[f"{target}_last"] = y.to_numpy()
    indexed = pd.Series(y.to_numpy(), index=pd.DatetimeIndex(frame[timestamp]))
    grouper = [frame[k].to_numpy() for k in keys]
    for w in windows:
        rolling = indexed.groupby(grouper, sort=False).rolling(pd.Timedelta(w), closed="right")
        label = window_label(w)
        # groupby keeps the groups in order of appearance, which is the sorted frame's order
        out[f"{target}_mean_{label}"] = rolling.mean().to_numpy()
        out[f"{target}_count_{label}"] = rolling.count().to_numpy()
    # Several events of an entity whose labels arrive together: the last row holds them all.
    return out.drop_duplicates([*keys, timestamp], keep="last").reset_index(drop=True)


def calendar_features(stamps: pd.Series, names: Sequence[str] = CALENDAR_FEATURES) -> pd.DataFrame:
    """Calendar parts of UTC timestamps, as integers."""
    t = pd.to_datetime(stamps, utc=True)
    parts = {
        "hour": t.dt.hour,
        "day_of_week": t.dt.dayofweek,
        "month": t.dt.month,
        "day_of_year": t.dt.dayofyear,
    }
    unknown = [n for n in names if n not in parts]
    if unknown:
        raise ValueError(f"unknown calendar feature(s) {unknown}; known: {sorted(parts)}")
    return pd.DataFrame({n: parts[n].astype("int64").to_numpy() for n in names}, index=stamps.index)


def encode_categories(values: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """Each value's position in ``categories`` (compared as text); -1 for unknown, NaN for
    missing."""
    lookup = {c: float(i) for i, c in enumerate(categories)}
    text = values.astype("string")
    codes = text.map(lambda v: lookup.get(v, -1.0) if v is not pd.NA else np.nan)
    return codes.to_numpy(dtype="float64", na_value=np.nan)


def load_repo(root: Path) -> ModuleType:
    """Import the project's ``feature_repo/features.py`` (a fresh import each call)."""
    path = root / REPO_DIRNAME / REPO_MODULE
    if not path.is_file():
        raise ConfigError(
            f"{path} is missing: this project's features are defined there; restore it, or "
            "make the project again with `driftloop init DIR --data ...`"
        )
    name = f"_driftloop_feature_repo_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    from driftloop.features.feast_import import import_feast

    import_feast()  # the module imports Feast: with its import-time side effects undone
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's code: report where, never a bare traceback
        raise ConfigError(f"{path}: importing it failed: {type(exc).__name__}: {exc}") from exc
    required = ("ENTITY_KEYS", "TARGET", "EVENT_FEATURES", "HISTORY_FEATURES", "transform_events",
                "history_view", "feature_service")  # fmt: skip
    missing = [n for n in required if not hasattr(module, n)]
    if missing:
        raise ConfigError(f"{path}: defines no {missing}; driftloop needs them (see its comments)")
    sys.modules.pop(name, None)
    return module


@dataclass(frozen=True)
class TableLayout:
    """The feature layout of a table project, read from its Feast repository module."""

    root: Path
    label_delay: timedelta
    kind: str = "table"

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
    def all_features(self) -> tuple[str, ...]:
        return self.event_features + self.history

    @property
    def integer_features(self) -> frozenset[str]:
        return frozenset(getattr(self.module, "INTEGER_FEATURES", ()))

    @property
    def nullable_features(self) -> frozenset[str]:
        """May be missing when served: an entity without known targets has no history."""
        return frozenset(self.history) | frozenset(getattr(self.module, "NULLABLE_FEATURES", ()))

    @property
    def calendar(self) -> tuple[str, ...]:
        return tuple(n for n in self.event_features if n in CALENDAR_FEATURES)

    def views(self) -> dict[str, tuple[str, ...]]:
        view = self.module.history_view
        # ``features``, not ``schema``: Feast's apply adds the entity columns to the schema
        # of the very object it was given.
        return {view.name: tuple(f.name for f in view.features)}

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
        try:
            out = self.module.transform_events(events)
        except Exception as exc:
            raise DataError(
                f"{self.root / REPO_DIRNAME / REPO_MODULE}: transform_events failed: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        missing = [n for n in self.event_features if n not in out.columns]
        if missing:
            raise DataError(
                f"{self.root / REPO_DIRNAME / REPO_MODULE}: transform_events returned no "
                f"column(s) {missing} listed in EVENT_FEATURES; return them or remove them there"
            )
        chosen: pd.DataFrame = out[list(self.event_features)].astype("float64")
        return chosen.set_axis(events.index)

    def history_rows(self, events: pd.DataFrame) -> pd.DataFrame:
        """The offline history table of ``events`` through the module's ``history_rows``
        (driftloop's ``history_features`` unless the user replaced it)."""
        make = getattr(self.module, "history_rows", None)
        if make is None:
            raise DataError(f"{self.root / REPO_DIRNAME / REPO_MODULE}: defines no history_rows")
        out: pd.DataFrame = make(events)
        return out
