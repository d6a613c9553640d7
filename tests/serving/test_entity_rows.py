"""The entity endpoint's rows: the vector cache and its invalidation, features outside
the views' TTL flagged in the answer and the log, every unknown entity named."""

from __future__ import annotations

from typing import Any

import httpx
import pandas as pd
import pytest

from driftloop.features.store import FeatureStore
from driftloop.serving.server import BackgroundServer, build_context
from driftloop.storage.segments import read_segments


@pytest.fixture
def server(canary_copy: Any) -> Any:
    server = BackgroundServer(build_context(canary_copy)).start()
    try:
        yield server
    finally:
        server.stop()


def predict(server: Any, body: dict[str, Any]) -> httpx.Response:
    with httpx.Client(base_url=server.url) as c:
        return c.post("/v1/predict", json=body)


def test_features_far_from_the_event_time_are_flagged_in_the_answer_and_the_log(
    server: Any,
) -> None:
    entity = {"store_id": 0, "product_id": 1}
    fresh = predict(server, {"entities": [{**entity, "request_id": "near"}]}).json()
    feature_time = pd.Timestamp(fresh["predictions"][0]["feature_time"])
    assert fresh["predictions"][0]["outside_ttl"] is False and "warning" not in fresh
    ttl = server.ctx.project.config.features.ttl_days
    cases = {
        "same-day": (feature_time + pd.Timedelta(hours=12), False),
        "years-before": (feature_time - pd.DateOffset(years=1), True),
        "past-ttl": (feature_time + pd.Timedelta(days=ttl, hours=1), True),
    }
    for rid, (when, flagged) in cases.items():
        r = predict(
            server, {"event_time": when.isoformat(), "entities": [{**entity, "request_id": rid}]}
        )
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["predictions"][0]["outside_ttl"] is flagged, rid
        assert ("warning" in doc) is flagged
        if flagged:
            assert f"features.ttl_days = {ttl}" in doc["warning"]
    server.ctx.flush_logs()
    log = read_segments(server.ctx.project.state_dir / "predictions").set_index("request_id")
    assert log.loc[["near", "same-day"], "outside_ttl"].tolist() == [False, False]
    assert log.loc[["years-before", "past-ttl"], "outside_ttl"].tolist() == [True, True]


def test_a_batch_names_every_unknown_entity_with_its_position(server: Any) -> None:
    known = {"store_id": 0, "product_id": 1}
    entities = [known, {"store_id": 50, "product_id": 1}, known, {"store_id": 7, "product_id": 9}]
    r = predict(server, {"entities": entities})
    assert r.status_code == 404, r.text
    doc = r.json()
    assert "2 of 4 entities have no features" in doc["error"]
    assert "entities[1] (store_id=50, product_id=1)" in doc["error"]
    assert "entities[3] (store_id=7, product_id=9)" in doc["error"]
    assert doc["unknown_entities"] == [
        {"position": 1, "store_id": 50, "product_id": 1},
        {"position": 3, "store_id": 7, "product_id": 9},
    ]
    many = [known] * 9_990 + [{"store_id": 100 + i, "product_id": 1} for i in range(10)]
    server.ctx.settings = server.ctx.settings.model_copy(update={"max_batch_rows": 10_000})
    doc = predict(server, {"entities": many}).json()
    assert [u["position"] for u in doc["unknown_entities"]] == list(range(9_990, 10_000))


def test_cached_rows_are_served_until_the_online_store_changes(server: Any) -> None:
    entity = {"store_id": 1, "product_id": 2}
    before = predict(server, {"entities": [entity]}).json()["predictions"][0]
    again = predict(server, {"entities": [entity]}).json()["predictions"][0]
    assert again["prediction"] == before["prediction"]
    store = FeatureStore(server.ctx.project)  # another writer: the server learns by the files
    row = store.online([(1, 2)]).frame
    later = pd.Timestamp(before["feature_time"]) + pd.Timedelta(days=1)
    row["event_timestamp"] = later
    row["price"] = row["price"] * 3 + 5
    store.write_online(row)
    after = predict(server, {"entities": [{**entity, "request_id": "after"}]}).json()
    after = after["predictions"][0]
    assert pd.Timestamp(after["feature_time"]) == later
    assert after["prediction"] != before["prediction"]
    server.ctx.flush_logs()
    log = read_segments(server.ctx.project.state_dir / "predictions")
    assert log.set_index("request_id").loc["after", "f__price"] == pytest.approx(
        float(row["price"].iloc[0]), rel=1e-6
    )
