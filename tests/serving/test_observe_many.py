"""Counting a batch into a Prometheus histogram at once equals observing value by value."""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from driftloop.serving.metrics import observe_many


def test_bulk_counts_equal_one_by_one_at_bounds_infinity_and_nan() -> None:
    rng = np.random.default_rng(7)
    bounds = (0.5, 1.0, 2.0, 10.0)
    values = np.concatenate([rng.normal(3, 4, 500), [0.5, 1.0, 2.0, 10.0, 10.5, np.inf, -np.inf]])
    with_nan = np.append(values, np.nan)
    rendered = []
    for bulk, data in ((False, values), (True, values), (False, with_nan), (True, with_nan)):
        registry = CollectorRegistry()
        hist = Histogram("h", "help", buckets=bounds, registry=registry)
        if bulk:
            observe_many(hist, data)
        else:
            for v in data.tolist():
                hist.observe(v)
        rendered.append(generate_latest(registry).decode())
    strip = [[line for line in r.splitlines() if "_created" not in line] for r in rendered]
    assert strip[0] == strip[1] and strip[2] == strip[3]
    assert 'h_bucket{le="2.0"}' in rendered[1] and "h_sum NaN" in rendered[3]
