"""Incremental binned counts: one pass over any number of rows, merged by addition.

A sketch holds the counts of values in fixed bins ``(-inf, e0], (e0, e1], ..., (ek, inf)``
(the bins of a reference profile) and a separate count of missing (NaN) values. Counts of
two windows add up to the counts of their union, so drift over any window is computed from
counts alone. Infinite values are not missing: they land in the outer bins, as in
:func:`driftloop.statistics.profile.bin_counts`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from driftloop.statistics.profile import ColumnProfile, bin_counts

__all__ = ["BinnedSketch", "validate_edges"]


def validate_edges(edges: Sequence[float]) -> tuple[float, ...]:
    """Return ``edges`` as floats; raise ValueError unless finite and strictly increasing."""
    checked = tuple(float(e) for e in edges)
    for i, edge in enumerate(checked):
        if not math.isfinite(edge):
            raise ValueError(f"bin edges must be finite, edge {i} is {edge!r}")
        if i > 0 and edge <= checked[i - 1]:
            raise ValueError(
                f"bin edges must be strictly increasing, edge {i} is {edge!r} "
                f"after {checked[i - 1]!r}"
            )
    return checked


class BinnedSketch:
    """Counts of values in fixed bins plus missing values; updated in place, merged by sum."""

    def __init__(self, edges: Sequence[float]) -> None:
        self._edges = validate_edges(edges)
        self._counts: NDArray[np.int64] = np.zeros(len(self._edges) + 1, dtype=np.int64)
        self._missing = 0

    @classmethod
    def from_profile(cls, column_profile: ColumnProfile) -> BinnedSketch:
        """An empty sketch on the bins of a reference profile's column."""
        return cls(column_profile.edges)

    @classmethod
    def from_counts(
        cls, edges: Sequence[float], counts: Sequence[int] | NDArray[np.int64], missing: int
    ) -> BinnedSketch:
        """A sketch holding stored ``counts`` (``len(edges) + 1`` of them) and ``missing``."""
        sketch = cls(edges)
        values = np.asarray(counts, dtype=np.int64)
        if values.shape != sketch._counts.shape:
            raise ValueError(
                f"{values.size} counts do not fit {len(sketch._edges)} edges: "
                f"expected {len(sketch._edges) + 1}"
            )
        sketch._counts = values.copy()
        sketch._missing = int(missing)
        return sketch

    @property
    def edges(self) -> tuple[float, ...]:
        """The inner bin edges."""
        return self._edges

    @property
    def counts(self) -> tuple[int, ...]:
        """Count per bin, ``len(edges) + 1`` of them; missing values excluded."""
        return tuple(int(c) for c in self._counts)

    @property
    def missing(self) -> int:
        """Number of missing (NaN) values seen."""
        return self._missing

    @property
    def total(self) -> int:
        """Number of values seen, missing included."""
        return int(self._counts.sum()) + self._missing

    def update(self, values: ArrayLike) -> None:
        """Count ``values`` (any shape, flattened) into the bins; NaN counts as missing."""
        counts, missing = bin_counts(values, self._edges)
        self._counts += np.asarray(counts, dtype=np.int64)
        self._missing += missing

    def merge(self, other: BinnedSketch) -> BinnedSketch:
        """A new sketch with the summed counts of ``self`` and ``other`` (same edges only)."""
        if other.edges != self._edges:
            raise ValueError(
                f"cannot merge sketches with different bin edges: {len(self._edges)} edges "
                f"{_preview(self._edges)} vs {len(other.edges)} edges {_preview(other.edges)}"
            )
        merged = BinnedSketch(self._edges)
        merged._counts = self._counts + other._counts
        merged._missing = self._missing + other._missing
        return merged

    def __repr__(self) -> str:
        return (
            f"BinnedSketch(edges={len(self._edges)}, total={self.total}, missing={self._missing})"
        )


def _preview(edges: tuple[float, ...], limit: int = 5) -> str:
    """The first few edges, for error messages."""
    shown = ", ".join(repr(e) for e in edges[:limit])
    return f"({shown}{', ...' if len(edges) > limit else ''})"
