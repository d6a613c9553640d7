from __future__ import annotations

import re

import numpy as np
import pytest

from driftloop.monitoring.sketch import BinnedSketch
from driftloop.statistics.profile import bin_counts, profile_column

EDGES = (-1.0, 0.0, 1.0)


def test_sketch_worked_example_counts_bins_and_missing() -> None:
    sketch = BinnedSketch(EDGES)
    sketch.update([-5.0, -1.0, -0.5, 0.0, 0.5, 2.0, np.inf, np.nan])
    assert sketch.counts == (2, 2, 1, 2)
    assert sketch.missing == 1
    assert sketch.total == 8


def test_counting_in_chunks_equals_counting_all_at_once() -> None:
    values = np.random.default_rng(20).normal(size=10_000)
    values[::97] = np.nan
    whole, chunked = BinnedSketch(EDGES), BinnedSketch(EDGES)
    whole.update(values)
    for chunk in np.array_split(values, 7):
        chunked.update(chunk)
    assert chunked.counts == whole.counts
    assert chunked.missing == whole.missing


def test_merge_equals_counting_the_concatenation_and_leaves_inputs_unchanged() -> None:
    rng = np.random.default_rng(21)
    a, b = rng.normal(size=300), np.append(rng.normal(size=700), np.nan)
    sa, sb, both = BinnedSketch(EDGES), BinnedSketch(EDGES), BinnedSketch(EDGES)
    sa.update(a)
    sb.update(b)
    both.update(np.concatenate([a, b]))
    merged = sa.merge(sb)
    assert merged is not sa and merged is not sb
    assert (merged.counts, merged.missing) == (both.counts, both.missing)
    assert (sa.total, sb.total, merged.total) == (300, 701, 1001)


def test_a_million_rows_in_one_update_gives_the_right_total() -> None:
    values = np.random.default_rng(22).normal(size=1_000_000)
    values[:10] = np.nan
    sketch = BinnedSketch([0.0])
    sketch.update(values)
    assert sketch.total == 1_000_000
    assert sketch.missing == 10
    assert sketch.counts[0] == int((values <= 0.0).sum())


def test_merging_sketches_with_different_edges_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("different bin edges: 3 edges")):
        BinnedSketch(EDGES).merge(BinnedSketch((-1.0, 0.0, 2.0)))


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        ((0.0, 0.0), "strictly increasing, edge 1 is 0.0 after 0.0"),
        ((1.0, 0.0), "strictly increasing, edge 1 is 0.0 after 1.0"),
        ((0.0, np.inf), "finite, edge 1 is inf"),
        ((np.nan,), "finite, edge 0 is nan"),
    ],
)
def test_sketch_refuses_edges_not_finite_and_strictly_increasing(
    edges: tuple[float, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        BinnedSketch(edges)


def test_sketch_from_profile_is_empty_on_the_profile_edges_and_recounts_them() -> None:
    values = np.append(np.random.default_rng(23).normal(size=2_000), np.nan)
    column = profile_column(values, 10)
    sketch = BinnedSketch.from_profile(column)
    assert sketch.edges == column.edges and sketch.total == 0
    assert sketch.counts == (0,) * (len(column.edges) + 1)
    sketch.update(values)
    assert (sketch.counts, sketch.missing) == (column.counts, column.missing)
    assert sketch.counts == tuple(bin_counts(values, column.edges)[0])


def test_sketch_without_edges_counts_every_value_in_one_bin() -> None:
    column = profile_column([4.0, 4.0, np.nan], 10)  # constant column: no edges
    sketch = BinnedSketch.from_profile(column)
    sketch.update([4.0, 4.0, 9.0, np.nan])
    assert sketch.counts == (3,) and sketch.missing == 1
