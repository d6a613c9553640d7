"""The damaged-segment scan reads a segment's bytes again only when the file changed."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from driftloop.storage.quarantine import damaged_segments


def _segment(state: Path, day: str, name: str) -> Path:
    path = state / "predictions" / day / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(path, index=False)
    return path


def test_a_whole_segment_damaged_later_is_found_by_the_next_scan(tmp_path: Path) -> None:
    state = tmp_path / ".driftloop"
    first = _segment(state, "2024-01-01", "part-1.parquet")
    second = _segment(state, "2024-01-02", "part-2.parquet")
    assert damaged_segments(state) == []
    assert damaged_segments(state) == []  # remembered as whole: not read again
    size = first.stat().st_size
    first.write_bytes(b"\0" * size)  # same size, new bytes: its mtime moved
    stamp = first.stat().st_mtime_ns + 1_000_000
    os.utime(first, ns=(stamp, stamp))
    second.write_bytes(b"cut")
    found = damaged_segments(state)
    assert [p for p, _ in found] == [first, second]
    assert "magic" in found[0][1] and "too short" in found[1][1]
    second.unlink()
    assert [p for p, _ in damaged_segments(state)] == [first]  # still damaged, still named
