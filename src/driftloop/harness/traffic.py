"""Replaying daily traffic through a real server: the demo's and the tests' client.

For each day the online store is materialized with the rows valid that day, every
(store, product) asks for its forecast in one request, and the day's actual sales go
back as labels through the feedback endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import pandas as pd

from driftloop.features.store import FeatureStore, utc_midnight

__all__ = ["TrafficStats", "replay_days"]


@dataclass(frozen=True)
class TrafficStats:
    """What a replay sent and what answered."""

    days: int
    requests: int
    predictions: int
    feedback: int
    versions: tuple[str, ...]


def replay_days(
    store: FeatureStore,
    base_url: str,
    days: Iterable[date],
    *,
    send_labels: bool = True,
    batch: bool = True,
) -> TrafficStats:
    """Serve ``days`` (each day's forecast for every entity) and feed the actuals back."""
    import httpx

    sales = store.layout.read_events()
    day_of = store.layout.event_days(sales)
    (first, second), label = store.keys, store.layout.label
    keys = store.entities()
    n_days = requests = predictions = feedback = 0
    versions: set[str] = set()
    # Loopback to the demo's own server: on a loaded machine a request may wait for the CPU.
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(600.0, connect=30.0)) as client:
        for day in days:
            store.materialize(utc_midnight(pd.Timestamp(day)))
            todays = sales[day_of == day]
            actual = {
                (int(s), int(p)): float(u)
                for s, p, u in todays[[first, second, label]].itertuples(index=False)
            }
            groups = [keys] if batch else [[k] for k in keys]
            for group in groups:
                entities = [{first: s, second: p} for s, p in group]
                body = {"event_time": day.isoformat(), "entities": entities}
                r = client.post("/v1/predict", json=body)
                r.raise_for_status()
                requests += 1
                outcomes = []
                for answer in r.json()["predictions"]:
                    predictions += 1
                    versions.add(str(answer["model_version"]))
                    key = (answer[first], answer[second])
                    if send_labels and key in actual:
                        outcomes.append(
                            {
                                "request_id": answer["request_id"],
                                "value": actual[key],
                                "name": label,
                            }
                        )
                if outcomes:
                    client.post("/v1/feedback", json={"outcomes": outcomes}).raise_for_status()
                    feedback += len(outcomes)
            n_days += 1
    return TrafficStats(n_days, requests, predictions, feedback, tuple(sorted(versions)))
