"""The prediction log's items: one batch per request and version, kept as arrays until
the log flusher encodes a segment (then folded into the stored days for monitoring)."""

from __future__ import annotations

import itertools
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
    frames = [_encode_group(names, group, types) for names, group in groups.items()]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _per_row(parts: list[Any], counts: list[int], fill: Any = None) -> list[Any] | None:
    """Each batch's per-row values one after the other (``fill`` for a batch without
    any); None when no batch has any. One pass of C-level chaining, no per-batch calls:
    the flusher runs while requests wait for the GIL, and a V2 request is one batch."""
    if all(p is None for p in parts):
        return None
    return list(
        itertools.chain.from_iterable(
            itertools.repeat(fill, c) if p is None else p
            for p, c in zip(parts, counts, strict=True)
        )
    )


def _stamps(seconds: list[float], counts: list[int]) -> pd.DatetimeIndex:
    micros = np.round(np.repeat(np.asarray(seconds, dtype="float64"), counts) * 1e6)
    return pd.to_datetime(micros.astype("int64"), unit="us", utc=True)


def _key_columns(entities: list[Any] | None, types: dict[str, str], total: int) -> dict[str, Any]:
    """The entity key columns (Int64 or string; NA where a row has no entity)."""
    out: dict[str, Any] = {}
    for j, (key, kind) in enumerate(types.items()):
        dtype = "string" if kind == "string" else "Int64"
        if entities is None:
            if dtype == "Int64":
                out[key] = pd.arrays.IntegerArray(
                    np.zeros(total, dtype="int64"), np.ones(total, dtype=bool)
                )
            else:
                out[key] = pd.array([None] * total, dtype="string")
            continue
        values = [e[j] if e else None for e in entities]
        if dtype == "Int64" and None not in values and all(type(v) is int for v in values):
            out[key] = pd.arrays.IntegerArray(
                np.array(values, dtype="int64"), np.zeros(total, dtype=bool)
            )
        else:
            out[key] = pd.array(values, dtype="string" if dtype == "string" else "Int64")
    return out


def _encode_group(
    names: tuple[str, ...], group: list[PredictionBatch], types: dict[str, str]
) -> pd.DataFrame:
    """The rows of the batches that share one feature order."""
    counts = [len(b.preds) for b in group]
    total = sum(counts)

    def repeat(values: list[Any]) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=object), counts)

    entities = _per_row([b.entities for b in group], counts)
    overrides = _per_row([b.overrides for b in group], counts)
    outside = _per_row([b.outside_ttl for b in group], counts, False)
    columns: dict[str, Any] = {
        "served_at": _stamps([b.served_at.timestamp() for b in group], counts),
        "event_time": _stamps([b.event_time.timestamp() for b in group], counts),
        "request_id": _per_row([b.request_ids for b in group], counts),
        "endpoint": repeat([b.endpoint for b in group]),
        "model": repeat([b.model for b in group]),
        "version": repeat([b.version for b in group]),
        "route": repeat([b.route for b in group]),
        **_key_columns(entities, types, total),
        "feature_time": _feature_times(group, counts),
        "prediction": np.concatenate([b.preds for b in group]).astype("float64"),
        "latency_ms": np.repeat([b.latency_ms for b in group], counts),
        "overrides": [""] * total if overrides is None or not any(overrides) else overrides,
        "outside_ttl": np.zeros(total, dtype=bool)
        if outside is None
        else np.array([bool(v) for v in outside], dtype=bool),
    }
    frame = pd.DataFrame(columns)
    frame["overrides"] = frame["overrides"].fillna("")
    # the features as one float64 block: per-column inserts, or a dict of columns that
    # pandas consolidates, copied every value again (0.2 s for 30,000 rows)
    x = np.concatenate([b.x for b in group]) if len(group) > 1 else group[0].x
    features = pd.DataFrame(
        x.astype("float64"), columns=[FEATURE_PREFIX + n for n in names], copy=False
    )
    return pd.concat([frame, features], axis=1, copy=False)


def _feature_times(group: list[PredictionBatch], counts: list[int]) -> Any:
    """Feature times as UTC timestamps: from epoch seconds (arrays, the entity endpoint's
    cached rows: one vector pass) or from timestamps."""
    parts = [b.feature_times for b in group]
    if all(isinstance(p, np.ndarray) and p.dtype.kind == "f" for p in parts):
        seconds: np.ndarray = np.concatenate(cast("list[np.ndarray]", parts))
        known = ~np.isnan(seconds)
        micros = np.round(np.where(known, seconds, 0.0) * 1e6).astype("int64")
        return pd.to_datetime(micros, unit="us", utc=True).where(known)
    return pd.to_datetime(_per_row(parts, counts) or [None] * sum(counts), utc=True)
