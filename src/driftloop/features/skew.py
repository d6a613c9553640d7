"""Training-serving skew: served feature values against their offline recomputation.

``compare_features`` is pure (frames in, a frozen report out). ``check_skew`` feeds it
rows from a source of served features (an online-store sample until the server's
prediction log exists) and rows recomputed from the raw events by the one feature
function, matched on (entity, event time).

A table project's prediction log is checked whole: each served event's model features
(event, history and real-time) against the training pipeline's features of the same
event in the stored events, so a request field sent in other units, an online
transformation that differs from the offline one, or a stale online row all show.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from driftloop.config import SkewConfig
from driftloop.errors import DataError
from driftloop.features.engineering import TIMESTAMP_COLUMN
from driftloop.features.store import FeatureStore
from driftloop.monitoring.predlog import feature_column, has_predictions, read_predictions

__all__ = [
    "FeatureSkew",
    "OnlineSampleSource",
    "PredictionLogSource",
    "ServedFeatureSource",
    "SkewReport",
    "check_skew",
    "compare_features",
    "has_logged_predictions",
    "recompute_events",
]


@dataclass(frozen=True)
class FeatureSkew:
    """How one feature's served values compare with the recomputed ones."""

    feature: str
    compared: int
    mismatches: int
    max_abs_diff: float

    @property
    def mismatch_rate(self) -> float:
        return self.mismatches / self.compared if self.compared else 0.0


@dataclass(frozen=True)
class SkewReport:
    """Per-feature skew plus the rows that could not be matched at all."""

    source: str
    rows: int
    unmatched_rows: int
    features: tuple[FeatureSkew, ...]
    max_mismatch_rate: float

    @property
    def worst_rate(self) -> float:
        rates = [f.mismatch_rate for f in self.features]
        unmatched = self.unmatched_rows / self.rows if self.rows else 0.0
        return max([unmatched, *rates])

    @property
    def passed(self) -> bool:
        return self.worst_rate <= self.max_mismatch_rate


def compare_features(
    served: pd.DataFrame,
    recomputed: pd.DataFrame,
    features: Sequence[str],
    abs_tolerance: float,
    rel_tolerance: float,
    keys: Sequence[str],
) -> tuple[int, tuple[FeatureSkew, ...]]:
    """Match rows on ``keys`` (entity and event time) and compare each feature.

    Two values agree when both are missing, or when
    ``|a - b| <= abs_tolerance + rel_tolerance * |b|``. Returns the number of served
    rows with no recomputed twin, and one FeatureSkew per feature over the matched rows.
    """
    keys = list(keys)
    missing = [c for c in (*keys, *features) if c not in served.columns]
    if missing:
        raise DataError(f"served feature rows lack column(s) {missing}")
    merged = served[[*keys, *features]].merge(
        recomputed[[*keys, *features]],
        on=keys,
        how="left",
        suffixes=("", "__offline"),
        indicator=True,
    )
    matched = merged[merged["_merge"] == "both"]
    unmatched = int((merged["_merge"] != "both").sum())
    results = []
    for name in features:
        a = pd.to_numeric(matched[name], errors="coerce").to_numpy(dtype="float64")
        b = pd.to_numeric(matched[f"{name}__offline"], errors="coerce").to_numpy(dtype="float64")
        both_nan = np.isnan(a) & np.isnan(b)
        diff = np.abs(a - b)
        agree = both_nan | (diff <= abs_tolerance + rel_tolerance * np.abs(b))
        one_nan = np.isnan(a) ^ np.isnan(b)
        finite = diff[~np.isnan(diff)]
        max_diff = float("inf") if one_nan.any() else float(finite.max()) if finite.size else 0.0
        results.append(
            FeatureSkew(
                feature=name,
                compared=len(matched),
                mismatches=int((~agree).sum()),
                max_abs_diff=max_diff,
            )
        )
    return unmatched, tuple(results)


class ServedFeatureSource(Protocol):
    """Where served feature rows come from (entity keys, event time, feature values)."""

    name: str

    def served_rows(self) -> pd.DataFrame: ...


class OnlineSampleSource:
    """A seeded sample of entities looked up in the online store, as the server would."""

    name = "online-store sample"

    def __init__(self, store: FeatureStore, sample_size: int, seed: int = 0) -> None:
        self.store = store
        self.sample_size = sample_size
        self.seed = seed

    def served_rows(self) -> pd.DataFrame:
        entities = self.store.entities()
        if not entities:
            raise DataError("the raw events hold no entities to sample")
        rng = np.random.default_rng(self.seed)
        take = min(self.sample_size, len(entities))
        chosen = sorted(entities[i] for i in rng.choice(len(entities), size=take, replace=False))
        # With real-time features the activity view's rows move at every event: the sample
        # checks the history view at its own feature time (the log checks the rest).
        rows = (
            self.store.online_view(chosen, "history")
            if self.store.has_activity
            else self.store.online(chosen)
        )
        if rows.frame.empty:
            raise DataError(
                "the online store has no rows for the sampled entities: "
                "run `driftloop features materialize` first"
            )
        return rows.frame


class PredictionLogSource:
    """Feature rows the server actually used, from its prediction log (entity endpoint).

    Each logged row carries the time of the online row it read (``feature_time``), so
    the recomputation is for exactly that (entity, time).
    """

    name = "prediction log"
    precision = "float32"  # the server feeds models float32

    def __init__(self, store: FeatureStore, limit: int, since: str | None = None) -> None:
        self.store = store
        self.limit = limit
        self.since = since

    def served_rows(self) -> pd.DataFrame:
        if self.store.layout.event_requests:  # each logged row is a whole event
            return self._events()
        # Rows where the client sent request-time values are not the store's to reproduce.
        log, frame = self._read(
            "endpoint = 'entity' AND feature_time IS NOT NULL AND overrides = ''", "feature_time"
        )
        names = [n for n in self.store.stored_features if feature_column(n) in log.columns]
        for n in names:
            frame[n] = log[feature_column(n)].astype("float64")
        if names:  # an entity served before it had any history has no stored row to check
            frame = frame[frame[names].notna().any(axis=1)]
        return frame.reset_index(drop=True)

    def _read(self, where: str, time_column: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The newest ``limit`` logged rows matching ``where`` (and ``since``), and a frame of
        their entity keys with ``time_column`` as the feature rows' time."""
        if self.since:
            where += f" AND served_at >= TIMESTAMP '{pd.Timestamp(self.since).isoformat()}'"
        log = read_predictions(self.store.project.state_dir, where)
        if log.empty:
            raise DataError(
                "the prediction log holds no entity predictions yet: serve some with "
                "`driftloop serve`, or use --source online"
            )
        log = log.sort_values("served_at").tail(self.limit)
        types = self.store.layout.entity_types
        frame = pd.DataFrame(
            {
                k: log[k].astype("string" if types[k] == "string" else "int64")
                for k in self.store.keys
            }
        )
        frame[TIMESTAMP_COLUMN] = pd.to_datetime(log[time_column], utc=True).astype(
            "datetime64[ns, UTC]"
        )
        return log, frame

    def _events(self) -> pd.DataFrame:
        """A table project's served events: keys, event time, every logged model feature."""
        log, frame = self._read("endpoint = 'entity' AND route <> 'shadow'", "event_time")
        for n in self.store.layout.all_features:
            if feature_column(n) in log.columns:
                frame[n] = log[feature_column(n)].astype("float64")
        return frame.reset_index(drop=True)


def recompute_events(store: FeatureStore, served: pd.DataFrame) -> pd.DataFrame:
    """The training pipeline's features of the served events found in the stored events
    (keys and event time): event features, then the point-in-time join."""
    keys = [*store.keys, TIMESTAMP_COLUMN]
    layout = store.layout
    events = layout.read_events()
    events[TIMESTAMP_COLUMN] = events[TIMESTAMP_COLUMN].astype("datetime64[ns, UTC]")
    chosen = events.merge(served[keys].drop_duplicates(), on=keys, how="inner")
    if chosen.empty:
        return pd.DataFrame(columns=[*keys, *layout.all_features])
    return store.historical(layout.event_rows(chosen))


def has_logged_predictions(store: FeatureStore) -> bool:
    """Whether the server has logged any predictions for this project."""
    return has_predictions(store.project.state_dir)


def check_skew(store: FeatureStore, source: ServedFeatureSource, cfg: SkewConfig) -> SkewReport:
    """Compare served rows from ``source`` with their recomputation from raw events."""
    served = source.served_rows()
    keys = list(store.keys)
    label = source.name
    if store.layout.event_requests and isinstance(source, PredictionLogSource):
        # Events after the stored ones are not in the offline data yet: nothing to compare.
        newest = store.layout.read_events()[TIMESTAMP_COLUMN].max()
        served = served[served[TIMESTAMP_COLUMN] <= newest]
        if served.empty:
            raise DataError(
                f"every logged event is newer than the stored events (up to {newest}): "
                "append the served events to the table first"
            )
        label = "prediction log (whole events)"
        names = [n for n in store.layout.all_features if n in served.columns]
        recomputed = recompute_events(store, served)
    else:
        found = served[keys].drop_duplicates().itertuples(index=False)
        entities = sorted(tuple(v if isinstance(v, str) else int(v) for v in e) for e in found)
        recomputed = store.compute(entities)
        names = [n for n in store.stored_features if n in served.columns]
    if getattr(source, "precision", "float64") == "float32":
        # Compare what the model saw: the recomputed value rounded as the server rounds it.
        recomputed[names] = recomputed[names].astype("float64").astype("float32").astype("float64")
    unmatched, features = compare_features(
        served,
        recomputed,
        names,
        cfg.abs_tolerance,
        cfg.rel_tolerance,
        (*keys, TIMESTAMP_COLUMN),
    )
    return SkewReport(
        source=label,
        rows=len(served),
        unmatched_rows=unmatched,
        features=features,
        max_mismatch_rate=cfg.max_mismatch_rate,
    )
