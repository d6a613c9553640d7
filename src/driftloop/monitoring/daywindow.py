"""A window of the day store: the stored days' rows merged into each version's sketches
and label sums (pure: rows in, ``WindowCounts`` out)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from driftloop.monitoring.assess import AccuracyStats
from driftloop.monitoring.dayledger import PREDICTION
from driftloop.monitoring.labels import ScoreHistogram
from driftloop.monitoring.sketch import BinnedSketch
from driftloop.statistics.profile import ReferenceProfile

__all__ = ["ProfileSource", "WindowCounts", "merge_window"]

ProfileSource = Callable[[str], ReferenceProfile]


@dataclass
class WindowCounts:
    """One version's merged days: what ``assess_version`` and the business table need."""

    features: dict[str, BinnedSketch]
    prediction: BinnedSketch
    accuracy: AccuracyStats = field(default_factory=AccuracyStats)
    days: list[AccuracyStats] = field(default_factory=list)  # each stored day's label sums
    scores: ScoreHistogram = field(default_factory=ScoreHistogram)
    business: dict[str, tuple[int, float]] = field(default_factory=dict)  # name -> count, sum

    @property
    def rows(self) -> int:
        return self.prediction.total


def merge_window(
    counts: Iterable[tuple[str, str, str, int]],
    labels: Iterable[tuple[str, str, str, str]],
    profiles: ProfileSource,
) -> dict[str, WindowCounts]:
    """Every version's merge of stored rows: ``counts`` (version, col, bins, missing) and
    ``labels`` (version, stats, auc, business) as the ``counts`` and ``days`` tables hold them."""
    summed: dict[tuple[str, str], tuple[np.ndarray, int]] = {}
    for version, col, bins, missing in counts:
        have = summed.get((version, col))
        values = np.asarray(json.loads(bins), dtype=np.int64)
        summed[(version, col)] = (
            (values, missing) if have is None else (have[0] + values, have[1] + missing)
        )
    out: dict[str, WindowCounts] = {}
    for version in sorted({v for v, _ in summed}):
        profile = profiles(version)
        features = {
            name: _sketch(c.edges, summed.get((version, name)))
            for name, c in profile.features.items()
        }
        prediction = _sketch(profile.prediction.edges, summed.get((version, PREDICTION)))
        if prediction.total:
            out[version] = WindowCounts(features, prediction)
    for version, stats, auc, business in labels:
        window = out.get(version)
        if window is None:
            continue
        day = AccuracyStats(**json.loads(stats))
        window.accuracy = window.accuracy + day
        window.days.append(day)
        window.scores = window.scores + ScoreHistogram.from_json(auc)
        for name, (count, total) in json.loads(business).items():
            n, s = window.business.get(name, (0, 0.0))
            window.business[name] = (n + int(count), s + float(total))
    return out


def _sketch(edges: Sequence[float], found: tuple[np.ndarray, int] | None) -> BinnedSketch:
    if found is None:
        return BinnedSketch(edges)
    return BinnedSketch.from_counts(edges, found[0], found[1])
