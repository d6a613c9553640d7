"""``/v1/predict/batch``: each request answered, routed, logged and counted as if alone."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from tests.serving.conftest import TOKEN

from driftloop.rollout.sources import parse_server_metrics
from driftloop.storage.segments import read_segments

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def _bodies() -> list[dict[str, Any]]:
    return [
        {
            "event_time": "2019-07-01",
            "routing_key": f"run-{i}",
            "request_id": f"b-{i}",
            "entities": [{"store_id": i % 3, "product_id": p} for p in (1, 2)],
        }
        for i in range(12)
    ] + [
        {
            "event_time": "2019-07-02",
            "request_id": "b-alone",
            "entities": [{"store_id": 1, "product_id": 3, "price": 4.5}],
        }
    ]


def test_a_batch_answers_logs_and_counts_each_request_as_if_sent_alone(served: Any) -> None:
    with httpx.Client(base_url=served.url) as c:
        c.post("/admin/weights", json={"challenger_weight": 50, "shadow": True}, headers=ADMIN)
        answers = [
            c.post(
                "/v1/predict",
                json={k: v for k, v in b.items() if k != "request_id"},
                headers={"X-Request-Id": b["request_id"]},
            ).json()
            for b in _bodies()
        ]
        assert all("predictions" in a for a in answers), answers
        alone = [a["predictions"] for a in answers]
        before = parse_server_metrics(c.get("/metrics").text, served.ctx.model_name)
        r = c.post("/v1/predict/batch", json={"requests": _bodies()})
        after = parse_server_metrics(c.get("/metrics").text, served.ctx.model_name)
        c.post("/admin/weights", json={"challenger_weight": 0, "shadow": False}, headers=ADMIN)
    assert r.status_code == 200, r.text
    batched = [x["predictions"] for x in r.json()["responses"]]
    assert [x["request_id"] for x in r.json()["responses"]] == [b["request_id"] for b in _bodies()]
    assert batched == alone  # same ids, versions, routes, predictions and feature times
    assert len({p["model_version"] for ps in batched for p in ps}) == 2  # both versions served
    counted = {v: after.versions[v].requests - before.versions[v].requests for v in ("1", "2")}
    per_version = {
        v: sum(any(p["model_version"] == v for p in ps) for ps in alone) for v in ("1", "2")
    }
    assert counted == per_version
    served.ctx.flush_logs()
    log = read_segments(served.ctx.project.state_dir / "predictions")
    rows = log[log["request_id"].str.startswith("b-")]
    answered = rows[rows["route"] != "shadow"].groupby("request_id").size()
    assert (answered == 2).all()  # each entity logged once per call, by its own id
    alone_row = rows[(rows["request_id"] == "b-alone") & (rows["route"] != "shadow")]
    assert alone_row["event_time"].dt.date.astype(str).unique().tolist() == ["2019-07-02"]
    assert alone_row["overrides"].tolist() == ["price", "price"]
    shadowed = rows[rows["route"] == "shadow"]["request_id"]
    champion = rows[rows["route"] == "champion"]["request_id"]
    assert sorted(shadowed) == sorted(champion)  # the challenger scored every champion row


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"requests": []}, 400, "non-empty 'requests'"),
        ({"requests": [{"entities": []}]}, 422, "requests[0].entities"),
        ({"requests": [{"entities": [{"store_id": 0}]}]}, 422, "requests[0].entities[0]"),
        (
            {"requests": [{"entities": [{"store_id": 0, "product_id": 1}], "when": 1}]},
            422,
            "unknown field(s) ['when']",
        ),
        (
            {"requests": [{"entities": [{"store_id": 0, "product_id": 1}], "routing_key": ""}]},
            422,
            "requests[0].routing_key",
        ),
        ({"requests": [], "extra": 1}, 400, "requests"),
    ],
)
def test_bad_batches_get_a_4xx_naming_the_request(
    served: Any, body: dict[str, Any], status: int, fragment: str
) -> None:
    r = httpx.post(f"{served.url}/v1/predict/batch", json=body)
    assert r.status_code == status and fragment in r.json()["error"], r.text
