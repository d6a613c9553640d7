"""The server over real HTTP (uvicorn on 127.0.0.1, a free port)."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from tests.serving.conftest import TOKEN, RegistryWithBrokenVersion

from driftloop.serving.server import BackgroundServer, build_context
from driftloop.storage.segments import read_segments

ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def v2_body(rows: list[list[float]], **params: Any) -> bytes:
    doc: dict[str, Any] = {
        "inputs": [
            {"name": "input", "shape": [len(rows), len(rows[0])], "datatype": "FP32", "data": rows}
        ],
    }
    if params:
        doc["parameters"] = params
    return orjson.dumps(doc)


def feature_rows(n: int = 1) -> list[list[float]]:
    row = [
        20.0,
        18.0,
        22.0,
        19.0,
        20.5,
        4.0,
        20.0,
        5.0,
        9.5,
        1.0,
        0.0,
        0.0,
        2.0,
        15.0,
        6.0,
        166.0,
        0.0,
    ]
    return [row] * n


def logged(server: Any) -> Any:
    server.ctx.flush_logs()
    return read_segments(server.ctx.project.state_dir / "predictions")


def test_health_metadata_and_v2_infer_without_content_type(served: Any) -> None:
    name = served.ctx.model_name
    with httpx.Client(base_url=served.url) as c:
        assert c.get("/v2/health/live").json() == {"live": True}
        assert c.get("/v2/health/ready").status_code == 200
        meta = c.get(f"/v2/models/{name}").json()
        assert meta["versions"] == ["1", "2"] and meta["platform"] == "driftloop/onnx"
        raw = httpx.Request(
            "POST", f"{served.url}/v2/models/{name}/infer", content=v2_body(feature_rows(3))
        )
        raw.headers.pop("content-type", None)
        r = c.send(raw)
        assert r.status_code == 200, r.text
        doc = r.json()
        assert doc["model_version"] in ("1", "2") and doc["outputs"][0]["shape"] == [3, 1]
        assert all(np.isfinite(doc["outputs"][0]["data"]))


def test_a_stock_v2_client_library_works_unmodified(served: Any) -> None:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=served.url.removeprefix("http://"))
    name = served.ctx.model_name
    assert client.is_server_live() and client.is_model_ready(name)
    assert client.get_model_metadata(name)["name"] == name
    x = np.asarray(feature_rows(4), dtype=np.float32)
    for binary in (False, True):
        tensor = triton.InferInput("input", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=binary)
        out = triton.InferRequestedOutput("predict", binary_data=binary)
        result = client.infer(name, [tensor], outputs=[out], model_version="1")
        assert result.as_numpy("predict").shape == (4, 1)
        assert result.get_response()["model_version"] == "1"
    client.close()


def test_entity_endpoint_reads_the_online_store_and_logs_what_it_used(served: Any) -> None:
    with httpx.Client(base_url=served.url) as c:
        r = c.post(
            "/v1/predict",
            json={
                "entities": [
                    {"store_id": 0, "product_id": 1, "request_id": "e-1"},
                    {"store_id": 2, "product_id": 3, "request_id": "e-2", "price": 4.5},
                ]
            },
        )
    assert r.status_code == 200, r.text
    preds = r.json()["predictions"]
    assert [p["request_id"] for p in preds] == ["e-1", "e-2"]
    assert all(p["model_version"] in ("1", "2") for p in preds)
    log = logged(served)
    row = log[log["request_id"] == "e-2"].iloc[0]
    assert row["f__price"] == pytest.approx(4.5) and row["overrides"] == "price"
    assert row["store_id"] == 2 and row["feature_time"] is not None


def test_feedback_by_request_id_and_by_entity_and_date(served: Any) -> None:
    with httpx.Client(base_url=served.url) as c:
        r = c.post(
            "/v1/feedback",
            json={
                "outcomes": [
                    {"request_id": "e-1", "value": 17},
                    {
                        "store_id": 0,
                        "product_id": 1,
                        "date": "2019-07-19",
                        "value": 1,
                        "kind": "business",
                        "name": "sale",
                    },
                ]
            },
        )
    assert r.json()["accepted"] == 2 and r.json()["by_entity_and_date"] == 1
    served.ctx.flush_logs()
    fb = read_segments(served.ctx.project.state_dir / "feedback")
    assert set(fb["kind"]) >= {"label", "business"}


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v2/models/{m}/infer", b"{oops", 400, "not valid JSON"),
        ("/v2/models/{m}/infer", v2_body([[1.0, 2.0]]), 400, "has 2 columns but the model"),
        (
            "/v2/models/{m}/infer",
            v2_body([[float("nan")] * 17]),
            422,  # NaN is JSON null
            "is not all FP32 values: null at position 0",
        ),
        ("/v2/models/other/infer", v2_body(feature_rows()), 404, "is not served here"),
        ("/v2/models/{m}/versions/9/infer", v2_body(feature_rows()), 404, "not being served"),
        (
            "/v1/predict",
            orjson.dumps({"entities": [{"store_id": 50, "product_id": 1}]}),
            404,
            "has no features in the online store",
        ),
        ("/v1/predict", orjson.dumps({"entities": [{"store_id": 0}]}), 422, "lacks"),
        (
            "/v1/predict",
            orjson.dumps({"entities": [{"store_id": 0, "product_id": 1, "units_lag_1": 3}]}),
            422,
            "come from the online store",
        ),
        ("/v1/feedback", orjson.dumps({"outcomes": [{"value": 3}]}), 422, "needs a request_id"),
        ("/v2/models/{m}/infer", b"x" * (9 * 1024 * 1024), 413, "exceeds serving.max_body_bytes"),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_problem(
    served: Any, path: str, body: bytes, status: int, message: str
) -> None:
    with httpx.Client(base_url=served.url) as c:
        r = c.post(path.format(m=served.ctx.model_name), content=body)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_admin_calls_need_the_token(served: Any) -> None:
    with httpx.Client(base_url=served.url) as c:
        assert c.post("/admin/weights", json={"challenger_weight": 10}).status_code == 401
        wrong = c.post(
            "/admin/weights",
            json={"challenger_weight": 10},
            headers={"Authorization": "Bearer nope"},
        )
        assert wrong.status_code == 401
        ok = c.post("/admin/weights", json={"challenger_weight": 10}, headers=ADMIN)
        assert ok.status_code == 200 and ok.json()["challenger_weight"] == 10
        bad = c.post("/admin/weights", json={"challenger_weight": 120}, headers=ADMIN)
        assert bad.status_code == 422 and "within 0..100" in bad.json()["error"]
        c.post("/admin/weights", json={"challenger_weight": 0}, headers=ADMIN)


def test_admin_api_is_off_without_a_token(canary_project: Any, monkeypatch: Any) -> None:
    monkeypatch.delenv("DRIFTLOOP_ADMIN_TOKEN", raising=False)
    with BackgroundServer(build_context(canary_project)) as server, httpx.Client() as c:
        r = c.post(f"{server.url}/admin/reload", headers=ADMIN)
    assert r.status_code == 403 and "admin API is disabled" in r.json()["error"]


def test_sticky_split_through_the_server(served: Any) -> None:
    name = served.ctx.model_name
    body = v2_body(feature_rows())
    with httpx.Client(base_url=served.url) as c:
        c.post("/admin/weights", json={"challenger_weight": 10}, headers=ADMIN)
        url = f"/v2/models/{name}/infer"

        def version(key: str) -> str:
            r = c.post(url, content=body, headers={"X-Routing-Key": key})
            return str(r.json()["model_version"])

        first = {f"k{i}": version(f"k{i}") for i in range(600)}
        share = sum(v == "2" for v in first.values()) / len(first)
        assert share == pytest.approx(0.10, abs=0.04)
        assert all(version(k) == v for k, v in list(first.items())[:100])
        c.post("/admin/weights", json={"challenger_weight": 0}, headers=ADMIN)


def test_weight_changes_and_reloads_under_load_lose_no_request(served: Any) -> None:
    name = served.ctx.model_name
    body = v2_body(feature_rows())
    failures: list[str] = []
    ids: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(base_url=served.url, timeout=30) as c:
            i = 0
            while not stop.is_set() or i < 50:
                rid = f"load-{worker}-{i}"
                r = c.post(
                    f"/v2/models/{name}/infer",
                    content=body,
                    headers={"X-Request-Id": rid, "X-Routing-Key": rid},
                )
                with lock:
                    (ids if r.status_code == 200 else failures).append(rid)
                i += 1

    workers = [threading.Thread(target=client, args=(w,)) for w in range(6)]
    for w in workers:
        w.start()
    with httpx.Client(base_url=served.url, headers=ADMIN, timeout=60) as admin:
        for step in range(10):
            assert (
                admin.post(
                    "/admin/weights", json={"challenger_weight": (step % 3) * 40}
                ).status_code
                == 200
            )
            if step % 3 == 0:
                assert admin.post("/admin/reload").status_code == 200
        admin.post("/admin/weights", json={"challenger_weight": 0})
    stop.set()
    for w in workers:
        w.join()
    assert failures == []
    assert len(ids) >= 300
    log = logged(served)
    assert set(ids) <= set(log["request_id"])
    assert set(log[log["request_id"].isin(ids)]["version"]) == {"1", "2"}


def test_graceful_shutdown_keeps_every_acknowledged_prediction(canary_project: Any) -> None:
    ctx = build_context(canary_project, admin_token=TOKEN)
    ctx.settings = ctx.settings.model_copy(update={"log_flush_interval_s": 3600.0})
    ctx.predictions.flush_interval_s = 3600.0  # the log was made with the default 2 s
    server = BackgroundServer(ctx).start()
    acknowledged = []
    with httpx.Client(base_url=server.url) as c:
        for i in range(200):
            rid = f"shutdown-{i}"
            r = c.post(
                f"/v2/models/{ctx.model_name}/infer",
                content=v2_body(feature_rows()),
                headers={"X-Request-Id": rid},
            )
            if r.status_code == 200:
                acknowledged.append(rid)
    assert ctx.predictions.pending >= 200  # nothing flushed yet: one flush per hour
    server.stop()
    log = read_segments(canary_project.state_dir / "predictions")
    assert set(acknowledged) <= set(log["request_id"])


def test_failing_challenger_does_not_touch_champion_answers(canary_project: Any) -> None:
    from driftloop.registry import open_registry

    registry = RegistryWithBrokenVersion(open_registry(canary_project), "2")
    ctx = build_context(canary_project, registry=registry, admin_token=TOKEN)
    with BackgroundServer(ctx) as server, httpx.Client(base_url=server.url) as c:
        c.post("/admin/weights", json={"challenger_weight": 50}, headers=ADMIN)
        codes: dict[str, list[int]] = {"1": [], "2": []}
        for i in range(200):
            r = c.post(
                f"/v2/models/{ctx.model_name}/infer",
                content=v2_body(feature_rows()),
                headers={"X-Routing-Key": f"k{i}"},
            )
            version = r.json().get("model_version") if r.status_code == 200 else "2"
            codes[str(version)].append(r.status_code)
            if r.status_code == 500:
                assert "model v2 failed" in r.json()["error"] and "request id" in r.json()["error"]
        metrics = c.get("/metrics").text
        c.post("/admin/weights", json={"challenger_weight": 0}, headers=ADMIN)
    assert codes["1"] and set(codes["1"]) == {200}
    assert codes["2"] and set(codes["2"]) == {500}
    assert 'driftloop_errors_total{kind="model_error",model="shop",version="2"}' in metrics
    assert 'kind="model_error",model="shop",version="1"' not in metrics


def test_a_challenger_that_fails_to_load_at_start_leaves_the_champion_serving(
    canary_project: Any,
) -> None:
    from driftloop.registry import open_registry

    registry = RegistryWithBrokenVersion(open_registry(canary_project), "2", unloadable=True)
    ctx = build_context(canary_project, registry=registry, admin_token=TOKEN)
    with BackgroundServer(ctx) as server, httpx.Client(base_url=server.url) as c:
        ready = c.get("/v2/health/ready")
        assert ready.status_code == 200
        assert "version 2 failed to load" in ready.json()["load_error"]
        assert c.get("/admin/routes", headers=ADMIN).json()["challenger"] is None
        r = c.post(f"/v2/models/{ctx.model_name}/infer", content=v2_body(feature_rows()))
        assert r.status_code == 200 and r.json()["model_version"] == "1"


def test_a_reload_to_a_version_that_fails_to_load_is_refused(canary_project: Any) -> None:
    from driftloop.registry import open_registry

    registry = RegistryWithBrokenVersion(open_registry(canary_project), "3", unloadable=True)
    ctx = build_context(canary_project, registry=registry, admin_token=TOKEN)
    with BackgroundServer(ctx) as server, httpx.Client(base_url=server.url) as c:
        assert c.get("/admin/routes", headers=ADMIN).json()["challenger"] == "2"
        registry.challenger_as = "3"  # the registry now names a challenger that cannot load
        r = c.post("/admin/reload", headers=ADMIN)
        assert r.status_code == 409 and "version 3 failed to load" in r.json()["error"]
        assert c.get("/admin/routes", headers=ADMIN).json()["challenger"] == "2"
        ok = c.post(f"/v2/models/{ctx.model_name}/infer", content=v2_body(feature_rows()))
        assert ok.status_code == 200


def test_shadow_mode_logs_the_challenger_and_answers_with_the_champion(served: Any) -> None:
    name = served.ctx.model_name
    with httpx.Client(base_url=served.url) as c:
        c.post("/admin/weights", json={"challenger_weight": 0, "shadow": True}, headers=ADMIN)
        r = c.post(
            f"/v2/models/{name}/infer",
            content=v2_body(feature_rows()),
            headers={"X-Request-Id": "shadow-1"},
        )
        c.post("/admin/weights", json={"challenger_weight": 0, "shadow": False}, headers=ADMIN)
    assert r.json()["model_version"] == "1"
    log = logged(served)
    rows = log[log["request_id"] == "shadow-1"]
    assert sorted(zip(rows["route"], rows["version"], strict=True)) == [
        ("champion", "1"),
        ("shadow", "2"),
    ]


def test_metrics_show_requests_latency_predictions_and_weights(served: Any) -> None:
    with httpx.Client(base_url=served.url) as c:
        c.post(f"/v2/models/{served.ctx.model_name}/infer", content=v2_body(feature_rows(2)))
        text = c.get("/metrics").text
    for name in (
        "driftloop_predictions_total",
        "driftloop_request_latency_seconds_bucket",
        "driftloop_prediction_value_bucket",
        "driftloop_route_weight",
    ):
        assert name in text
    assert 'driftloop_route_weight{alias="champion",model="shop",version="1"}' in text


def test_admin_promote_and_rollback_move_the_registry_and_the_traffic(project_copy: Any) -> None:
    from datetime import date

    from driftloop.pipeline.train import run_training
    from driftloop.registry import open_registry

    registry = open_registry(project_copy)
    run_training(project_copy, registry, date(2019, 5, 1), actor="tests")
    run_training(project_copy, registry, date(2019, 6, 1), actor="tests", on_pass="challenger")
    if registry.alias("challenger") is None:
        registry.move_alias("challenger", "2", "promote", "tests", "fixture")
    ctx = build_context(project_copy, admin_token=TOKEN)
    with BackgroundServer(ctx) as server, httpx.Client(base_url=server.url, headers=ADMIN) as c:
        promoted = c.post("/admin/promote", json={"reason": "canary passed"}).json()
        assert promoted["champion"] == "2" and promoted["challenger"] is None
        r = c.post(f"/v2/models/{ctx.model_name}/infer", content=v2_body(feature_rows()))
        assert r.json()["model_version"] == "2"
        back = c.post("/admin/rollback", json={"reason": "drill"}).json()
        assert back["champion"] == "1"
        assert c.post("/admin/rollback").status_code == 409  # nothing further back
    moves = [(m.kind, m.to_version, m.actor) for m in registry.alias_history("champion")]
    assert moves[-2:] == [
        ("promote", "2", "server admin API"),
        ("rollback", "1", "server admin API"),
    ]
