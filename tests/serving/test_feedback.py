"""/v1/feedback: which outcomes matched a logged prediction, unknown fields named, and the
accuracy gauges held back below ``monitoring.min_labels``."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import numpy as np
from prometheus_client import CollectorRegistry, generate_latest

from driftloop.config import MonitoringConfig
from driftloop.monitoring.profile import build_profile
from driftloop.serving.live_monitor import LiveMonitor


def test_feedback_says_which_request_ids_matched_a_logged_prediction(served: Any) -> None:
    with httpx.Client(base_url=served.url) as c:
        r = c.post("/v1/predict", json={"entities": [
            {"store_id": 0, "product_id": 1, "request_id": "old-1"},
            {"store_id": 0, "product_id": 2, "request_id": "fresh-1"},
        ]})  # fmt: skip
        assert r.status_code == 200, r.text
        served.ctx.flush_logs()  # old-1 and fresh-1 are on disk and in the live index
        served.ctx.live._recent.clear()  # as after a restart: only the log on disk knows
        c.post(
            "/v1/predict",
            json={
                "entities": [
                    {"store_id": 0, "product_id": 3, "request_id": "buffered-1"},
                ]
            },
        ).raise_for_status()  # fmt: skip  (not flushed: found in the buffer)
        r = c.post("/v1/feedback", json={"outcomes": [
            {"request_id": "old-1", "value": 3},
            {"request_id": "nope", "value": 4},
            {"request_id": "buffered-1", "value": 5, "kind": "business", "name": "sale"},
            {"store_id": 0, "product_id": 1, "date": "2019-07-19", "value": 1},
        ]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json() == {
        "accepted": 4, "matched": 2, "unmatched": 1, "unmatched_request_ids": ["nope"],
        "by_entity_and_date": 1,
    }  # fmt: skip


def test_an_unknown_outcome_field_is_named_with_a_suggestion(served: Any) -> None:
    with httpx.Client(base_url=served.url) as c:
        r = c.post("/v1/feedback", json={"outcomes": [{"request_id": "a", "label": 1}]})
    assert r.status_code == 422
    error = r.json()["error"]
    assert "outcomes[0] has unknown field 'label'" in error and "did you mean 'value'" in error


def test_accuracy_gauges_are_not_exported_below_min_labels() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(10, 2, size=(500, 1))
    profile = build_profile({"f": x[:, 0]}, x[:, 0], bins=10)
    live = LiveMonitor("m", MonitoringConfig(min_labels=50, min_label_coverage=0.0))
    live.set_reference("1", profile, 0.2)
    registry = CollectorRegistry()
    registry.register(live)
    ids = [f"r{i}" for i in range(200)]
    live.observe("1", date(2024, 1, 1), ["f"], x[:200], x[:200, 0], ids)

    def exported() -> str:
        return generate_latest(registry).decode()

    live.observe_labels((rid, 10.0) for rid in ids[:49])
    text = exported()
    assert "driftloop_accuracy{" not in text and "driftloop_accuracy_reference{" in text
    assert "driftloop_label_coverage{" in text
    live.observe_labels((rid, 10.0) for rid in ids[49:50])
    assert 'driftloop_accuracy{metric="wape"' in exported()
    assert live.seen(["r0", "zz"]) == {"r0"}
