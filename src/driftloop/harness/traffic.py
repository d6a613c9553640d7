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

from driftloop.features.engineering import ENTITY_KEYS
from driftloop.features.store import FeatureStore, utc_midnight
from driftloop.features.training_set import LABEL_COLUMN

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

    sales = store.project.read_sales()
    day_of = pd.to_datetime(sales["date"]).dt.date
    keys = store.entities()
    n_days = requests = predictions = feedback = 0
    versions: set[str] = set()
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for day in days:
            store.materialize(utc_midnight(pd.Timestamp(day)))
            todays = sales[day_of == day]
            actual = {
                (int(s), int(p)): float(u)
                for s, p, u in todays[[*ENTITY_KEYS, LABEL_COLUMN]].itertuples(index=False)
            }
            groups = [keys] if batch else [[k] for k in keys]
            for group in groups:
                entities = [{ENTITY_KEYS[0]: s, ENTITY_KEYS[1]: p} for s, p in group]
                body = {"event_time": day.isoformat(), "entities": entities}
                r = client.post("/v1/predict", json=body)
                r.raise_for_status()
                requests += 1
                outcomes = []
                for answer in r.json()["predictions"]:
                    predictions += 1
                    versions.add(str(answer["model_version"]))
                    key = (answer[ENTITY_KEYS[0]], answer[ENTITY_KEYS[1]])
                    if send_labels and key in actual:
                        outcomes.append({"request_id": answer["request_id"],
                                         "value": actual[key], "name": LABEL_COLUMN})  # fmt: skip
                if outcomes:
                    client.post("/v1/feedback", json={"outcomes": outcomes}).raise_for_status()
                    feedback += len(outcomes)
            n_days += 1
    return TrafficStats(n_days, requests, predictions, feedback, tuple(sorted(versions)))
