"""/v1/feedback: which outcomes matched a logged prediction, unknown fields named, and the
accuracy gauges held back below ``monitoring.min_labels``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry, generate_latest

from driftloop.config import MonitoringConfig
from driftloop.monitoring.daystore import DayStore
from driftloop.monitoring.predlog import feedback_dir, predictions_dir
from driftloop.serving.live_monitor import LiveMonitor
from driftloop.serving.predlog import PredictionBatch, encode_predictions
from driftloop.statistics.profile import build_profile


def test_feedback_says_which_request_ids_matched_a_logged_prediction(served: Any) -> None:
    with httpx.Client(base_url=served.url) as c:
        r = c.post(
            "/v1/predict",
            json={
                "entities": [
                    {"store_id": 0, "product_id": 1, "request_id": "old-1"},
                    {"store_id": 0, "product_id": 2, "request_id": "fresh-1"},
                ]
            },
        )
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
        ).raise_for_status()  # not flushed: found in the buffer
        r = c.post(
            "/v1/feedback",
            json={
                "outcomes": [
                    {"request_id": "old-1", "value": 3},
                    {"request_id": "nope", "value": 4},
                    {"request_id": "buffered-1", "value": 5, "kind": "business", "name": "sale"},
                    {"store_id": 0, "product_id": 1, "date": "2019-07-19", "value": 1},
                ]
            },
        )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "accepted": 4,
        "matched": 2,
        "unmatched": 1,
        "unmatched_request_ids": ["nope"],
        "by_entity_and_date": 1,
    }


def test_an_unknown_outcome_field_is_named_with_a_suggestion(served: Any) -> None:
    with httpx.Client(base_url=served.url) as c:
        r = c.post("/v1/feedback", json={"outcomes": [{"request_id": "a", "label": 1}]})
    assert r.status_code == 422
    error = r.json()["error"]
    assert "outcomes[0] has unknown field 'label'" in error and "did you mean 'value'" in error


def test_accuracy_gauges_are_not_exported_below_min_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(10, 2, size=(500, 1))
    profile = build_profile({"f": x[:, 0]}, x[:, 0], bins=10)
    cfg = MonitoringConfig(min_labels=50, min_label_coverage=0.0)
    info = (profile, 0.2, float("nan"))
    live = LiveMonitor("m", cfg, "wape", DayStore(tmp_path), lambda _version: info)
    live.set_reference("1", profile, 0.2)
    registry = CollectorRegistry()
    registry.register(live)
    ids = [f"r{i}" for i in range(200)]
    served = datetime(2024, 1, 1, 12, tzinfo=UTC)
    batch = PredictionBatch(
        served,
        served,
        ids,
        "v2",
        "m",
        "1",
        "champion",
        ("f",),
        x[:200],
        x[:200, 0],
        1.0,
        None,
        None,
        None,
    )
    logged = encode_predictions([batch], {"store_id": "int64", "product_id": "int64"})
    path = predictions_dir(tmp_path) / "2024-01-01" / "part-1.parquet"
    path.parent.mkdir(parents=True)
    logged.to_parquet(path)  # what the log flusher writes, then folds
    live.fold_predictions(path, logged)

    def feedback(part: str, labelled: list[str]) -> None:
        frame = pd.DataFrame(
            {
                "received_at": [served] * len(labelled),
                "request_id": labelled,
                "date": [None] * len(labelled),
                "name": "label",
                "kind": "label",
                "value": 10.0,
            }
        )
        path = feedback_dir(tmp_path) / "2024-01-02" / part
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path)
        live.fold_feedback(path, frame)

    def exported() -> str:
        return generate_latest(registry).decode()

    feedback("part-1.parquet", ids[:49])
    text = exported()
    assert "driftloop_accuracy{" not in text and "driftloop_accuracy_reference{" in text
    assert "driftloop_label_coverage{" in text
    feedback("part-2.parquet", ids[49:50])
    assert 'driftloop_accuracy{metric="wape"' in exported()
    assert live.seen(["r0", "zz"]) == {"r0"}


def test_the_live_index_of_request_ids_forgets_whole_segments_oldest_first(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from driftloop.serving import live_monitor

    monkeypatch.setattr(live_monitor, "MAX_RECENT", 10)
    profile = build_profile({"f": np.arange(20.0)}, np.arange(20.0), bins=4)
    info = (profile, 0.2, float("nan"))
    live = LiveMonitor("m", MonitoringConfig(), "wape", DayStore(tmp_path), lambda _v: info)
    for segment in range(4):  # 6 ids a segment
        live._remember(f"s{segment}-{i}" for i in range(6))
    # the last two segments hold 12 >= 10 ids: the first two are forgotten
    assert live.seen(["s0-0", "s1-5", "s2-0", "s3-5"]) == {"s2-0", "s3-5"}
