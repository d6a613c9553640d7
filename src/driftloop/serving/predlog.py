"""The prediction log's items: one batch per request and version, kept as arrays until
the log flusher encodes a segment (then folded into the stored days for monitoring)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import numpy as np
import pandas as pd

from driftloop.monitoring.predlog import FEATURE_PREFIX

__all__ = ["FEATURE_PREFIX", "PredictionBatch", "encode_predictions"]


@dataclass(frozen=True, slots=True)
class PredictionBatch:
    """The predictions of one request for one version, kept as arrays until a flush."""

    served_at: datetime
    event_time: datetime
    request_ids: Sequence[str]
    endpoint: str
    model: str
    version: str
    route: str
    feature_names: tuple[str, ...]
    x: np.ndarray
    preds: np.ndarray
    latency_ms: float
    entities: Sequence[tuple[Any, ...]] | None
    feature_times: Sequence[Any] | np.ndarray | None  # timestamps, or epoch seconds (NaN: none)
    overrides: Sequence[str] | None
    outside_ttl: Sequence[bool] | None = None  # entity rows: features beyond the views' TTL

    def __len__(self) -> int:
        return len(self.preds)


def encode_predictions(
    batches: Sequence[PredictionBatch], entity_types: Mapping[str, str]
) -> pd.DataFrame:
    """One frame of prediction-log rows from buffered batches (one column per feature).

    ``entity_types`` names the entity key columns and their types (int64 or string):
    the layout's ``entity_types``.
    """
    types = dict(entity_types)
    groups: dict[tuple[str, ...], list[PredictionBatch]] = {}
    for b in batches:
        groups.setdefault(b.feature_names, []).append(b)
    frames = []
    for names, group in groups.items():
        counts = [len(b) for b in group]

        def repeat(values: list[Any], counts: list[int] = counts) -> np.ndarray:
            return np.repeat(np.asarray(values, dtype=object), counts)

        def per_row(get: Any, group: list[PredictionBatch] = group) -> list[Any]:
            out: list[Any] = []
            for b in group:
                values = get(b)
                out.extend(values if values is not None else [None] * len(b))
            return out

        def stamps(values: list[datetime], counts: list[int] = counts) -> pd.DatetimeIndex:
            seconds = np.repeat(np.fromiter((v.timestamp() for v in values), float), counts)
            return pd.to_datetime(np.round(seconds * 1e6).astype("int64"), unit="us", utc=True)

        entities = per_row(lambda b: b.entities)
        by_key = [[e[j] if e else None for e in entities] for j in range(len(types))]
        x = np.vstack([b.x for b in group])
        columns: dict[str, Any] = {
            "served_at": stamps([b.served_at for b in group]),
            "event_time": stamps([b.event_time for b in group]),
            "request_id": per_row(lambda b: b.request_ids),
            "endpoint": repeat([b.endpoint for b in group]),
            "model": repeat([b.model for b in group]),
            "version": repeat([b.version for b in group]),
            "route": repeat([b.route for b in group]),
            **{
                key: pd.array(list(by_key[j]), dtype="string" if kind == "string" else "Int64")
                for j, (key, kind) in enumerate(types.items())
            },
            "feature_time": _feature_times(group, per_row),
            "prediction": np.concatenate([b.preds for b in group]).astype("float64"),
            "latency_ms": np.repeat([b.latency_ms for b in group], counts),
            "overrides": per_row(lambda b: b.overrides)
            if any(b.overrides for b in group)
            else [""] * sum(counts),
            "outside_ttl": np.array(
                [bool(v) for v in per_row(lambda b: b.outside_ttl)], dtype=bool
            ),
        }
        frame = pd.DataFrame(columns)
        frame["overrides"] = frame["overrides"].fillna("")
        # the features as one float64 block: per-column inserts, or a dict of columns that
        # pandas consolidates, copied every value again (0.2 s for 30,000 rows)
        features = pd.DataFrame(
            x.astype("float64"), columns=[FEATURE_PREFIX + n for n in names], copy=False
        )
        frame = pd.concat([frame, features], axis=1, copy=False)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _feature_times(group: list[PredictionBatch], per_row: Any) -> Any:
    """Feature times as UTC timestamps: from epoch seconds (arrays, the entity endpoint's
    cached rows: one vector pass) or from timestamps."""
    parts = [b.feature_times for b in group]
    if all(isinstance(p, np.ndarray) and p.dtype.kind == "f" for p in parts):
        seconds: np.ndarray = np.concatenate(cast("list[np.ndarray]", parts))
        known = ~np.isnan(seconds)
        micros = np.round(np.where(known, seconds, 0.0) * 1e6).astype("int64")
        return pd.to_datetime(micros, unit="us", utc=True).where(known)
    return pd.to_datetime(per_row(lambda b: b.feature_times), utc=True)
