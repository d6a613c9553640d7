"""The registry or the online feature store goes away under a running server: it keeps
serving the loaded versions, readiness stays 200 and lists what is degraded, the entity
endpoint answers 503 naming the feature store, a reload is refused while the registry is
down; when the dependency is back, all of it works again.

The outages are real: the registry's SQLite file is moved away (MLflow opens a connection
per session here, ``NullPool``, so it notices; a pooled connection keeps reading the moved
file), and the online store is a real redis-server, stopped and started again."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.backends.test_redis_postgres import RedisServer, free_port, wait_for
from tests.serving.conftest import TOKEN
from tests.serving.test_server import feature_rows, v2_body

from driftloop.clock import SimulatedClock
from driftloop.features.store import FeatureStore, utc_midnight
from driftloop.project import Project
from driftloop.serving.server import BackgroundServer, build_context

ADMIN = {"Authorization": f"Bearer {TOKEN}"}
ENTITY = {"entities": [{"store_id": 0, "product_id": 0}]}


class Outage:
    """A file moved away and a folder in its place (unopenable), until ``end()``."""

    def __init__(self, path: Path) -> None:
        self.path, self.away = path, path.with_name(path.name + ".away")
        path.rename(self.away)
        path.mkdir()

    def end(self) -> None:
        self.path.rmdir()
        self.away.rename(self.path)


@pytest.fixture
def serving(canary_copy: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")
    clock = SimulatedClock(datetime(2019, 6, 20, tzinfo=UTC))
    ctx = build_context(canary_copy, clock=clock, admin_token=TOKEN)
    with BackgroundServer(ctx) as server, httpx.Client(base_url=server.url, timeout=30) as c:
        yield server, c, clock


def ready(client: httpx.Client, clock: SimulatedClock, interval_s: float) -> dict[str, Any]:
    clock.advance(timedelta(seconds=interval_s))  # past the cached probe
    answer = client.get("/v2/health/ready")
    assert answer.status_code == 200, answer.text
    doc: dict[str, Any] = answer.json()
    return doc


def test_registry_down_keeps_serving_reports_degraded_and_refuses_reload(
    serving: Any, canary_copy: Any
) -> None:
    server, client, clock = serving
    model, every = canary_copy.model_name, canary_copy.config.serving.dependency_check_interval_s
    infer = f"/v2/models/{model}/infer"
    assert ready(client, clock, every)["degraded"] == []

    outage = Outage(canary_copy.state_dir / "mlflow.db")
    try:
        doc = ready(client, clock, every)
        assert doc["ready"] is True and doc["degraded"] == ["registry"]
        assert "model registry at" in doc["dependencies"]["registry"]
        assert doc["dependencies"]["feature_store"] == "ok"
        assert client.post(infer, content=v2_body(feature_rows(3))).status_code == 200
        assert client.post("/v1/predict", json=ENTITY).status_code == 200
        refused = client.post("/admin/reload", headers=ADMIN)
        assert refused.status_code == 503
        assert "reload refused, v1, v2 keep serving" in refused.json()["error"]
        assert server.ctx.routes_payload()["champion"] == "1"
        assert client.post(infer, content=v2_body(feature_rows())).status_code == 200
    finally:
        outage.end()
    assert ready(client, clock, every)["degraded"] == []
    reloaded = client.post("/admin/reload", headers=ADMIN)
    assert reloaded.status_code == 200, reloaded.text
    assert (reloaded.json()["champion"], reloaded.json()["challenger"]) == ("1", "2")


# -- the online store on a real Redis --------------------------------------------------------


class Redis:
    """A redis-server with an append-only file, so a restart keeps the rows (as a real one)."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("the redis-server binary is absent (Debian package 'redis-server')")
        self.binary = binary
        self.base = Path(tempfile.mkdtemp(prefix="driftloop-redis-"))
        self.server = RedisServer(free_port())
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.server.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                str(self.base),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: self.server.client(0).ping(), self.proc, "redis-server", None)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
            self.proc = None


@pytest.fixture
def redis() -> Iterator[Redis]:
    running = Redis()
    running.start()
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(running.base, ignore_errors=True)


def test_online_store_down_keeps_v2_serving_and_the_entity_endpoint_names_it(
    canary_copy: Any, redis: Redis
) -> None:
    data = yaml.safe_load(canary_copy.config_path.read_text())
    data["features"]["online_store"] = {
        "type": "redis",
        "connection_string": redis.server.connection_string(0),
    }
    canary_copy.config_path.write_text(yaml.safe_dump(data))
    project = Project.load(canary_copy.root)
    # The feature views are applied already (Feast keeps the online store in its config, not
    # in its registry): load the last day's rows into Redis.
    last_day = utc_midnight(date(2019, 7, 19))
    FeatureStore(project).materialize(last_day, since=last_day - timedelta(days=1))
    clock = SimulatedClock(datetime(2019, 6, 20, tzinfo=UTC))
    every = project.config.serving.dependency_check_interval_s
    ctx = build_context(project, clock=clock, admin_token=TOKEN)
    with BackgroundServer(ctx) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.post("/v1/predict", json=ENTITY).status_code == 200
        assert ready(client, clock, every)["degraded"] == []

        redis.stop()
        doc = ready(client, clock, every)
        assert doc["degraded"] == ["feature_store"]
        assert "could not read the online store" in doc["dependencies"]["feature_store"]
        down = client.post("/v1/predict", json=ENTITY)
        assert down.status_code == 503
        said = down.json()["error"]
        assert f"online feature store (redis at 127.0.0.1:{redis.server.port}" in said
        assert "/v2 inference with the features in the request keeps serving" in said
        infer = client.post(
            f"/v2/models/{project.model_name}/infer", content=v2_body(feature_rows())
        )
        assert infer.status_code == 200

        redis.start()
        assert ready(client, clock, every)["degraded"] == []
        assert client.post("/v1/predict", json=ENTITY).status_code == 200
