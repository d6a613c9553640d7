"""Feature rows of the entity endpoint as arrays: the online row cache and its misses.

A cache hit is a dict lookup and a NumPy stack: no pandas, no worker thread. Each
entity's stored features are kept as one float64 vector (``columns`` order, the
store's features then the request-time ones) with its feature time; a model's own
feature order is one column take (``RowBlock.matrix``). The cache is valid while the
online store's stamp is unchanged (the SQLite store's files: any write changes them),
exactly as the store's own cache; stores that cannot show writes (Redis) are read on
every request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from driftloop.errors import RequestError
from driftloop.features.engineering import TIMESTAMP_COLUMN

__all__ = ["CachedRow", "OnlineRowCache", "RowBlock", "UnknownEntities", "block_from_frame"]

MESSAGE_LISTS = 20  # unknown entities named in an error message (all are in its details)


@dataclass(frozen=True, slots=True)
class CachedRow:
    """One entity's stored features in ``columns`` order and the time they are valid from."""

    values: np.ndarray  # float64, NaN where the store has no value
    seconds: float  # feature time, seconds since the epoch (NaN if none)
    iso: str | None


@dataclass(frozen=True, slots=True)
class RowBlock:
    """The feature rows of one request, in request order."""

    values: np.ndarray  # rows x columns, float64
    index: dict[str, int]  # column name -> position in ``values``
    seconds: np.ndarray  # feature time per row (NaN if none)
    iso: list[str | None]  # the same as ISO text, for the answer
    takes: dict[tuple[str, ...], np.ndarray]  # a model's feature order -> column positions

    def matrix(
        self, names: Sequence[str], rows: Sequence[int], nullable: frozenset[str]
    ) -> np.ndarray:
        """Rows x the model's features, float32; missing values refused unless nullable."""
        order = tuple(names)
        take = self.takes.get(order)
        if take is None:
            unknown = [n for n in order if n not in self.index]
            if unknown:
                raise RequestError(
                    f"features {unknown} are neither in the online store nor sent: send them "
                    "as request-time values, or apply and materialize the features",
                    422,
                )
            take = self.takes[order] = np.array([self.index[n] for n in order], dtype=np.intp)
        # rows are increasing positions: as many as the block has means all of them
        chosen = self.values if len(rows) == len(self.values) else self.values[list(rows)]
        x = chosen.take(take, axis=1)
        bad = ~np.isfinite(x)
        if bad.any():
            missing = sorted(
                {names[j] for j in np.nonzero(bad)[1].tolist() if names[j] not in nullable}
            )
            if missing:
                raise RequestError(
                    f"no value for {missing}: send them as request-time values, or "
                    "rematerialize the features",
                    422,
                )
        return np.ascontiguousarray(x, dtype=np.float32)

    def outside(self, event_seconds: float | None, ttl_seconds: float) -> list[bool]:
        """Per row: is the event further than the TTL from the feature time (either way)?"""
        if event_seconds is None:
            return [False] * len(self.seconds)
        gap = np.abs(event_seconds - self.seconds)
        flags: list[bool] = (gap > ttl_seconds).tolist()  # no time (NaN) is never flagged
        return flags


class UnknownEntities(RequestError):
    """Entities the online store has no row for: all of them, with their positions."""

    def __init__(
        self, keys: Sequence[str], unknown: Sequence[tuple[int, tuple[Any, ...]]], total: int
    ) -> None:
        self.details = {
            "unknown_entities": [
                {"position": i, **dict(zip(keys, key, strict=True))} for i, key in unknown
            ]
        }
        named = "; ".join(
            f"entities[{i}] ({', '.join(f'{k}={v}' for k, v in zip(keys, key, strict=True))})"
            for i, key in unknown[:MESSAGE_LISTS]
        )
        more = f" and {len(unknown) - MESSAGE_LISTS} more" if len(unknown) > MESSAGE_LISTS else ""
        said = (
            f"entity {named} has no features in the online store"
            if len(unknown) == 1
            else f"{len(unknown)} of {total} entities have no features in the online store: "
            f"{named}{more} (each with its position under 'unknown_entities')"
        )
        super().__init__(f"{said}; check the keys or run `driftloop features materialize`", 404)


class OnlineRowCache:
    """Entity key -> CachedRow, dropped whole whenever the online store's stamp changes."""

    def __init__(self, keys: Sequence[str], columns: Sequence[str]) -> None:
        self.keys = tuple(keys)
        self.columns = tuple(columns)
        self.index = {n: i for i, n in enumerate(self.columns)}
        self._rows: dict[tuple[Any, ...], CachedRow] = {}
        self._stamp: tuple[int, ...] | None = None
        self.takes: dict[tuple[str, ...], np.ndarray] = {}

    def get(
        self, stamp: tuple[int, ...] | None, keys: Sequence[tuple[Any, ...]]
    ) -> list[CachedRow | None]:
        """Cached rows (None for a miss) under the store's current ``stamp`` (None: the
        store is never cached, every key misses)."""
        if stamp is None:
            return [None] * len(keys)
        if stamp != self._stamp:
            self._rows = {}  # swapped, never cleared in place: a reader keeps a whole dict
            self._stamp = stamp
        rows = self._rows
        return [rows.get(k) for k in keys]

    def convert(self, frame: pd.DataFrame) -> dict[tuple[Any, ...], CachedRow]:
        """Rows of an online lookup (``OnlineRows.frame``) by entity key."""
        values = frame.reindex(columns=list(self.columns)).to_numpy(dtype="float64")
        stamps = pd.to_datetime(frame[TIMESTAMP_COLUMN], utc=True)
        keys = list(zip(*(frame[k].tolist() for k in self.keys), strict=True))
        out = {}
        for i, (key, stamp) in enumerate(zip(keys, stamps.tolist(), strict=True)):
            when = None if pd.isna(stamp) else pd.Timestamp(stamp)
            out[key] = CachedRow(
                values[i].copy(),
                float("nan") if when is None else when.timestamp(),
                None if when is None else when.isoformat(),
            )
        return out

    def keep(self, stamp: tuple[int, ...] | None, rows: dict[tuple[Any, ...], CachedRow]) -> None:
        """Cache rows read under ``stamp`` if the store still has that stamp."""
        if stamp is not None and stamp == self._stamp:
            self._rows.update(rows)

    def block(self, found: Sequence[CachedRow], sent: Sequence[dict[str, Any]]) -> RowBlock:
        """The request's rows, each with its request-time values in place."""
        values = np.stack([r.values for r in found]) if found else np.empty((0, 0))
        for r, given in enumerate(sent):
            for name, value in given.items():
                j = self.index.get(name)
                if j is not None:
                    values[r, j] = value
        return RowBlock(
            values,
            self.index,
            np.fromiter((r.seconds for r in found), float, len(found)),
            [r.iso for r in found],
            self.takes,
        )


def block_from_frame(frame: pd.DataFrame, names: Sequence[str]) -> RowBlock:
    """A RowBlock from a feature frame (the table projects' path): ``names`` as columns."""
    columns = list(dict.fromkeys(names))
    values = frame.reindex(columns=columns).to_numpy(dtype="float64")
    stamps = pd.to_datetime(frame[TIMESTAMP_COLUMN], utc=True)
    times = [None if pd.isna(s) else pd.Timestamp(s) for s in stamps.tolist()]
    seconds = np.array([np.nan if t is None else t.timestamp() for t in times], dtype=float)
    iso: list[str | None] = [None if t is None else t.isoformat() for t in times]
    return RowBlock(values, {n: i for i, n in enumerate(columns)}, seconds, iso, {})
