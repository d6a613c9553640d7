"""Columns that look like features but are not: exact parts of the target, split markers,
row ids. Pure: arrays in, sentences for "what to check" out (init flags, the user decides).

- **Exact relations**: the target equals the sum or the difference of two numeric columns
  in at least 99 % of the rows where all three are present. Each such column is a part of
  the outcome; if one of them is recorded with the outcome, the other leaks it.
- **Split markers**: a column holding only split words (train, test, validation ...); a
  two-valued column that switches once with time (at least 98 % of rows on the side of one
  cut that its value says), the shape of a train/test flag; or a few-valued column named
  like a split (split, fold, is_test ...).
- **Ids**: whole numbers distinct in at least 90 % of the rows, whole numbers that count up
  with time, or a column named like an id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "EXACT_SHARE",
    "ID_DISTINCT_SHARE",
    "SPLIT_AGREEMENT",
    "SPLIT_WORDS",
    "exact_relations",
    "id_like",
    "split_markers",
    "time_cut_agreement",
]

EXACT_SHARE = 0.99
SPLIT_AGREEMENT = 0.98
ID_DISTINCT_SHARE = 0.9
SAMPLE_ROWS = 5_000  # enough rows to call a relation exact; keeps k x k pairs cheap
SPLIT_WORDS = frozenset(
    {
        "train",
        "training",
        "test",
        "testing",
        "valid",
        "validation",
        "val",
        "holdout",
        "dev",
        "eval",
        "evaluation",
        "oot",
    }
)
_SPLIT_NAME = re.compile(r"(^|_)(split|fold|subset|partition|is_train|is_test|is_valid)($|_)")
_ID_NAME = re.compile(r"(^id$|_id$|^id_|uuid|guid|(^|_)(key|index|row_?number|rownum)$)")

Array = np.ndarray[Any, np.dtype[Any]]


def _sample(n: int) -> Array:
    """Evenly spaced row positions, at most SAMPLE_ROWS of them (deterministic)."""
    if n <= SAMPLE_ROWS:
        return np.arange(n)
    return np.linspace(0, n - 1, SAMPLE_ROWS).round().astype(int)


def exact_relations(
    target: str, y: Array, numeric: Mapping[str, Array]
) -> list[tuple[str, str, str, float]]:
    """(a, op, b, share) for each pair with target == a op b (op '+' or '-') exactly
    (within 1e-6 relative) in at least EXACT_SHARE of the rows where all are present."""
    names = list(numeric)
    if len(names) < 2:
        return []
    rows = _sample(len(y))
    x = np.column_stack([np.asarray(numeric[n], dtype="float64")[rows] for n in names])
    t = np.asarray(y, dtype="float64")[rows]
    tol = (1e-6 * np.maximum(1.0, np.abs(t)))[:, None]
    found: list[tuple[str, str, str, float]] = []
    for i, a in enumerate(names):
        # t == a + b  <=>  b == t - a;   t == a - b  <=>  b == a - t
        for op, other in (("+", t - x[:, i]), ("-", x[:, i] - t)):
            present = np.isfinite(x) & np.isfinite(other)[:, None]
            close = (np.abs(x - other[:, None]) <= tol) & present
            counted = present.sum(axis=0)
            share = close.sum(axis=0) / np.maximum(counted, 1)
            for j in np.nonzero((share >= EXACT_SHARE) & (counted >= len(rows) // 2))[0]:
                if j == i or (op == "+" and j < i):
                    continue
                found.append((a, op, names[j], float(share[j])))
    return found


def time_cut_agreement(times: Array, flag: Array) -> tuple[float, int]:
    """The best share of rows a single time cut explains for a 0/1 ``flag`` (one value
    before the cut, the other from it), and the row position of that cut in time order."""
    order = np.argsort(times, kind="stable")
    return _cut(np.asarray(flag, dtype="float64")[order])


def _cut(b: Array) -> tuple[float, int]:
    """time_cut_agreement of a 0/1 array already in time order."""
    n = len(b)
    ones_before = np.concatenate(([0.0], np.cumsum(b)))  # ones among the first c rows
    zeros_before = np.arange(n + 1) - ones_before
    total_ones = ones_before[-1]
    rising = zeros_before + (total_ones - ones_before)  # 0 before the cut, 1 from it
    falling = ones_before + ((n - total_ones) - zeros_before)
    best = np.maximum(rising, falling)
    cut = int(np.argmax(best))
    return float(best[cut] / n), cut


class _TimeOrder:
    """The rows' time order, sorted once and only if a check needs it."""

    def __init__(self, times: pd.Series) -> None:
        self.stamps = times.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").view("int64")
        self._order: Array | None = None

    @property
    def order(self) -> Array:
        if self._order is None:
            self._order = np.argsort(self.stamps)  # ties in any order: a cut is a time
        return self._order


def split_markers(frame: pd.DataFrame, times: pd.Series, columns: Sequence[str]) -> dict[str, str]:
    """Why each of ``columns`` looks like a train/test marker, by column."""
    out: dict[str, str] = {}
    clock = _TimeOrder(times)
    for name in columns:
        values = frame[name]
        # no split marker has more than 10 values: rule most columns out on a few rows
        if values.iloc[:1_000].nunique() > 10 or values.nunique() > 10:
            continue
        present = values.notna().to_numpy()
        raw = pd.unique(values[present])
        distinct = sorted({str(v).strip().lower() for v in raw})
        if 0 < len(distinct) <= 4 and set(distinct) <= SPLIT_WORDS:
            out[name] = f"holds split labels ({', '.join(distinct)})"
            continue
        if len(raw) == 2 and present.sum() >= 20:
            keep = present[clock.order]
            ordered = clock.stamps[clock.order][keep]
            share, cut = _cut((values == raw[1]).to_numpy("float64")[clock.order][keep])
            minority = min(cut, len(ordered) - cut) / len(ordered)
            if share >= SPLIT_AGREEMENT and minority >= 0.02:
                when = pd.Timestamp(int(ordered[cut]))
                out[name] = (
                    f"has two values that change once with time, around {when:%Y-%m-%d} "
                    f"({share:.0%} of rows on the side that value says): the shape of a "
                    "train/test flag or a period marker"
                )
                continue
        if _SPLIT_NAME.search(name.lower()) and len(distinct) <= 10:
            out[name] = f"is named like a split marker ({len(distinct)} values)"
    return out


def id_like(
    frame: pd.DataFrame, times: pd.Series, numeric: Mapping[str, Array], columns: Sequence[str]
) -> dict[str, str]:
    """Why each of ``columns`` looks like an id rather than a measurement, by column."""
    out: dict[str, str] = {}
    clock = _TimeOrder(times)
    for name in columns:
        values = numeric.get(name)
        if values is not None:
            v = np.asarray(values, dtype="float64")
            ok = np.isfinite(v)
            whole = bool(ok.any() and (v[ok] == np.floor(v[ok])).all())
            distinct = len(np.unique(v[ok])) if whole else 0
            if whole and distinct >= ID_DISTINCT_SHARE * len(v):
                out[name] = f"holds {distinct:,} distinct whole numbers in {len(v):,} rows"
                continue
            if whole and distinct >= 0.5 * len(v):
                steps = np.diff(v[clock.order][ok[clock.order]])
                if len(steps) and (steps >= 0).mean() >= 0.99:
                    out[name] = "holds whole numbers that count up with time (a row number)"
                    continue
        if _ID_NAME.search(name.lower()):
            out[name] = "is named like an id"
    return out
