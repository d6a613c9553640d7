"""The same loop on other backends, switched by config only: Feast's online store on a real
Redis, MLflow's registry on a real PostgreSQL (Debian packages, started here on 127.0.0.1).

Each case builds the same small project (same seed), applies and materializes its
features, trains and registers version 1, serves two days through a real server, and
must serve exactly what the embedded default (SQLite + SQLite) serves, with the served
features equal to their offline recomputation.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from tests.conftest import SMALL_SCENARIO

from driftloop.app.scaffold import create_project
from driftloop.features.skew import PredictionLogSource, SkewReport, check_skew
from driftloop.features.store import FeatureStore, utc_midnight
from driftloop.harness.traffic import replay_days
from driftloop.pipeline.train import run_training
from driftloop.project import Project
from driftloop.registry import CHAMPION, open_registry
from driftloop.serving.server import BackgroundServer, build_context
from driftloop.storage.segments import read_segments

AS_OF = date(2019, 5, 1)
SERVED_DAYS = [date(2019, 5, 6), date(2019, 5, 7)]
PG_USER = "driftloop"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(ready: Any, proc: subprocess.Popen[bytes], what: str, log: Path | None) -> None:
    """Poll ``ready()`` until it returns True; fail with the service's log if it exits."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = log.read_text(errors="replace")[-2000:] if log and log.is_file() else ""
            pytest.fail(f"{what} exited with code {proc.returncode} before answering: {said}")
        try:
            if ready():
                return
        except Exception:  # not listening yet; any client error means "try again"
            pass
        time.sleep(0.1)  # polling a process we started
    proc.kill()
    pytest.fail(f"{what} did not answer within 60 s")


# -- Redis ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisServer:
    port: int

    def connection_string(self, db: int) -> str:
        return f"127.0.0.1:{self.port},db={db}"

    def client(self, db: int) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, db=db, socket_timeout=5)


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    """A throwaway redis-server on a free loopback port: no persistence, no system service."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("the redis-server binary is absent (Debian package 'redis-server')")
    base = Path(tempfile.mkdtemp(prefix="driftloop-redis-"))
    server = RedisServer(free_port())
    log = base / "redis.log"
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(server.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--dir",
            str(base),
            "--logfile",
            str(log),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: server.client(0).ping(), proc, "redis-server", log)
        yield server
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)


# -- PostgreSQL ----------------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    """Where initdb and postgres are: on PATH, or Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("initdb")
    candidates = [Path(found).parent] if found else []
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += sorted(
        (Path(d) for d in versions), key=lambda d: int(d.parent.name), reverse=True
    )
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


@dataclass(frozen=True)
class PostgresServer:
    port: int
    password: str

    def connect(self, dbname: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=PG_USER,
            password=self.password,
            dbname=dbname,
            connect_timeout=5,
        )

    def create_database(self, name: str) -> str:
        """A new database; its SQLAlchemy URI, password included."""
        conn = self.connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return f"postgresql://{PG_USER}:{self.password}@127.0.0.1:{self.port}/{name}"


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL cluster in a temp folder on a free loopback port.

    PostgreSQL refuses to run as root: as root, initdb and postgres run as the
    ``postgres`` user that Debian's package creates, in a folder handed to it.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL's initdb/postgres are absent (Debian package 'postgresql')")
    user: str | None = None
    if os.geteuid() == 0:
        import pwd

        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        user = account.pw_name
    # Not under pytest's tmp_path: its parents are private to the user running pytest.
    base = Path(tempfile.mkdtemp(prefix="driftloop-pg-"))
    server = PostgresServer(free_port(), "pw-" + secrets.token_hex(8))
    (base / "pwfile").write_text(server.password + "\n")
    if user is not None:
        for path in (base, base / "pwfile"):
            shutil.chown(path, user, user)
    data, log = base / "data", base / "postgres.log"
    initdb = subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            "-U",
            PG_USER,
            f"--pwfile={base / 'pwfile'}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        ],
        user=user,
        cwd=base,
        capture_output=True,
        text=True,
        check=False,
    )
    if initdb.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"initdb failed: {initdb.stderr[-2000:]}")
    with log.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(server.port),
                "-k",
                str(base),
                "-h",
                "127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],
            user=user,
            cwd=base,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: server.connect().close() is None, proc, "postgres", log)
        yield server
    finally:
        proc.send_signal(signal.SIGINT)  # fast shutdown: MLflow's pool may hold sessions open
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)


# -- the loop on one backend combination -----------------------------------------------------


@dataclass(frozen=True)
class Served:
    """What one backend combination served."""

    project: Project
    predictions: pd.DataFrame  # entity, event day, feature time, version, prediction
    skew: SkewReport
    seconds: float


def serve_on(root: Path, online_store: dict[str, Any] | None, tracking_uri: str | None) -> Served:
    """Create the project, point it at the backends, then apply, materialize, train, serve."""
    started = time.perf_counter()
    project = create_project(root, "retail", 7, SMALL_SCENARIO)
    data = yaml.safe_load(project.config_path.read_text())
    if online_store is not None:
        data["features"]["online_store"] = online_store
    if tracking_uri is not None:
        data["registry"]["tracking_uri"] = tracking_uri
    project.config_path.write_text(yaml.safe_dump(data))
    project = Project.load(root)

    store = FeatureStore(project)
    store.apply()
    store.materialize(utc_midnight(SERVED_DAYS[0]))
    registry = open_registry(project)
    result = run_training(project, registry, AS_OF, actor="tests")
    assert result.alias == CHAMPION
    with BackgroundServer(build_context(project)) as server:
        stats = replay_days(FeatureStore(project), server.url, SERVED_DAYS)
        server.ctx.flush_logs()
    assert stats.predictions == len(SERVED_DAYS) * 12 == stats.feedback
    assert stats.versions == ("1",)

    log = read_segments(project.state_dir / "predictions", "endpoint = 'entity'")
    predictions = (
        log[["store_id", "product_id", "event_time", "feature_time", "version", "prediction"]]
        .sort_values(["event_time", "store_id", "product_id"])
        .reset_index(drop=True)
    )
    skew = check_skew(store, PredictionLogSource(store, limit=10_000), project.config.features.skew)
    return Served(project, predictions, skew, time.perf_counter() - started)


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Served:
    """The default: SQLite online store, MLflow on SQLite, both under .driftloop/."""
    return serve_on(tmp_path_factory.mktemp("embedded") / "shop", None, None)


def check_like_embedded(served: Served, embedded: Served) -> None:
    """Every served row's features came from the day it was served for and equal the offline
    recomputation; the predictions are the embedded backend's, row for row."""
    assert served.skew.rows == len(SERVED_DAYS) * 12
    assert served.skew.passed, served.skew
    log = served.predictions
    assert (log["feature_time"] == log["event_time"]).all()  # the day's row, not a stale one
    assert sorted(log["event_time"].dt.date.unique()) == SERVED_DAYS
    pd.testing.assert_frame_equal(
        log.drop(columns="prediction"), embedded.predictions.drop(columns="prediction")
    )
    np.testing.assert_allclose(log["prediction"], embedded.predictions["prediction"], rtol=1e-9)


def test_embedded_default_serves_its_offline_features(embedded: Served) -> None:
    check_like_embedded(embedded, embedded)
    assert embedded.project.online_store_path is not None
    assert embedded.project.online_store_path.is_file()
    assert (embedded.project.state_dir / "mlflow.db").is_file()
    print(f"embedded (sqlite + sqlite): {embedded.seconds:.1f} s")


def assert_rows_in_redis(served: Served, redis_server: RedisServer, db: int) -> None:
    assert served.project.online_store_path is None
    assert not (served.project.state_dir / "online_store.db").exists()
    assert served.project.online_store_label == f"redis at 127.0.0.1:{redis_server.port},db={db}"
    assert redis_server.client(db).dbsize() == 12  # one hash per (store, product)


def assert_registry_in_postgres(served: Served, server: PostgresServer, database: str) -> None:
    project = served.project
    assert not (project.state_dir / "mlflow.db").exists()
    registry = open_registry(project)
    assert server.password not in repr(registry)
    champion = registry.alias(CHAMPION)
    assert champion is not None and champion.version == "1"
    conn = server.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT name, version FROM model_versions")
            assert cur.fetchall() == [(project.model_name, 1)]
    finally:
        conn.close()
    # driftloop's own state (alias history, routes) stays in .driftloop/state.db.
    moves = registry.history.moves(project.model_name, CHAMPION)
    assert [m.to_version for m in moves] == ["1"]


def test_redis_online_store_serves_what_the_embedded_store_serves(
    embedded: Served, redis_server: RedisServer, tmp_path: Path
) -> None:
    online = {"type": "redis", "connection_string": redis_server.connection_string(1)}
    served = serve_on(tmp_path / "shop", online, None)
    check_like_embedded(served, embedded)
    assert_rows_in_redis(served, redis_server, 1)
    print(f"redis online store: {served.seconds:.1f} s")


def test_postgres_registry_serves_what_the_embedded_registry_serves(
    embedded: Served, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    uri = postgres_server.create_database("registry_only")
    served = serve_on(tmp_path / "shop", None, uri)
    check_like_embedded(served, embedded)
    assert_registry_in_postgres(served, postgres_server, "registry_only")
    print(f"postgres registry: {served.seconds:.1f} s")


def test_redis_and_postgres_together(
    embedded: Served, redis_server: RedisServer, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    online = {"type": "redis", "connection_string": redis_server.connection_string(2)}
    uri = postgres_server.create_database("both")
    served = serve_on(tmp_path / "shop", online, uri)
    check_like_embedded(served, embedded)
    assert_rows_in_redis(served, redis_server, 2)
    assert_registry_in_postgres(served, postgres_server, "both")
    print(f"redis + postgres: {served.seconds:.1f} s")


def test_an_unreachable_redis_is_reported_without_its_password(project_copy: Project) -> None:
    from driftloop.errors import FeatureStoreError

    secret = "pw-" + secrets.token_hex(8)
    data = yaml.safe_load(project_copy.config_path.read_text())
    data["features"]["online_store"] = {
        "type": "redis",
        "connection_string": f"127.0.0.1:{free_port()},password={secret}",
    }
    project_copy.config_path.write_text(yaml.safe_dump(data))
    store = FeatureStore(Project.load(project_copy.root))
    assert not store.caches_online_rows
    with pytest.raises(FeatureStoreError, match="could not read the online store") as e:
        store.online([(1, 1)])
    assert secret not in str(e.value)
    assert secret not in store.project.online_store_label


def test_doctor_names_a_redis_store_without_its_password() -> None:
    from driftloop.app.doctor import ProjectState, evaluate
    from driftloop.config import ProjectConfig

    online = {"type": "redis", "connection_string": "10.0.0.5:6379,password=s3cr3t"}
    config = ProjectConfig.model_validate({"project": "shop", "features": {"online_store": online}})
    checks = {c.id: c for c in evaluate(config, ProjectState(online_store=True))}
    seen = checks["features.online"].seen
    assert "redis" in seen and "password=***" in seen and "s3cr3t" not in seen
