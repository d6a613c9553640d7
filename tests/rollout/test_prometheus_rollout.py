"""Rollouts decided from PromQL answers of a real Prometheus scraping real servers.

The setup is two ``driftloop serve`` replicas (two :class:`BackgroundServer` on one
project, like two pods of one Deployment sharing the project's registry), scraped by
Debian's ``prometheus`` as two targets of two jobs (``driftloop-a``, ``driftloop-b``).
A driftloop server routes between champion and challenger itself (sticky by entity key),
so a version is not a separate process: every replica serves both, and the canary's
counters are spread over the replicas. That is what ``PrometheusMetricsSource`` exists
for (``sum by (version)`` over instances), so the rollout here reads *only* PromQL
answers, selected with ``job=~"driftloop-.+"``. The weight goes to both replicas through
their admin APIs (``ServerAdminRouter`` each, fanned out by :class:`Replicas`); requests
alternate between the replicas.

Traffic is seeded and sent between the controller's checks, which run on a simulated
clock. After each burst the test polls Prometheus (bounded) until its sums equal the
servers' own counters, so every check judges exactly what was sent; nothing else waits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.monitoring.test_live import free_port
from tests.rollout.test_server_rollout import E2E, TOKEN, RegistryWithFlakyVersion
from tests.serving.test_server import feature_rows, v2_body

from driftloop.clock import SimulatedClock
from driftloop.config import RolloutConfig
from driftloop.errors import RouterError
from driftloop.rollout.controller import RolloutController
from driftloop.rollout.metrics import Snapshot
from driftloop.rollout.outcomes import LogOutcomeSource
from driftloop.rollout.router import ServerAdminRouter
from driftloop.rollout.sources import PrometheusMetricsSource, parse_server_metrics
from driftloop.rollout.store import RolloutStore
from driftloop.serving.routing import RouteTable
from driftloop.serving.server import BackgroundServer, build_context

NO_PROMETHEUS = "the prometheus binary is absent (Debian package 'prometheus'; CI installs it)"
pytestmark = pytest.mark.skipif(shutil.which("prometheus") is None, reason=NO_PROMETHEUS)

SELECTOR = 'job=~"driftloop-.+"'
SCRAPE_TIMEOUT_S = 20.0
# Checks every 30 simulated seconds: a 60 s step is judged at its second check.
CONFIG = {**E2E, "check_interval_s": 30.0}
PER_TICK = 600  # requests per check, alternating between the two replicas


class Replicas:
    """One rollout over several server replicas: every change goes to each of them."""

    def __init__(self, routers: list[ServerAdminRouter]) -> None:
        self.routers = routers

    def _same(self, call: Callable[[ServerAdminRouter], RouteTable]) -> RouteTable:
        tables = [call(r) for r in self.routers]
        if any(t != tables[0] for t in tables[1:]):
            raise RouterError(f"the replicas disagree on the route table: {tables}")
        return tables[0]

    def current(self) -> RouteTable:
        return self._same(lambda r: r.current())

    def set_weight(self, weight: float, shadow: bool = False) -> RouteTable:
        return self._same(lambda r: r.set_weight(weight, shadow))

    def reload(self) -> RouteTable:
        return self._same(lambda r: r.reload())


class RecordingSource(PrometheusMetricsSource):
    """The Prometheus source, counting the snapshots the controller took from it."""

    taken: int = 0

    def snapshot(self) -> Snapshot:
        self.taken += 1
        return super().snapshot()


@dataclasses.dataclass
class Prometheus:
    url: str
    proc: subprocess.Popen[bytes]


def start_prometheus(tmp_path: Path, jobs: dict[str, str]) -> Prometheus:
    """Debian's prometheus on a free loopback port, scraping ``jobs`` (name -> host:port)."""
    scrape = [
        {
            "job_name": name,
            "scrape_interval": "250ms",
            "scrape_timeout": "200ms",
            "static_configs": [{"targets": [target]}],
        }
        for name, target in jobs.items()
    ]
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": scrape,
            }
        )
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SCRAPE_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/-/ready").status_code == 200:
                return Prometheus(url, proc)
        time.sleep(0.1)  # polling the process we started
    proc.terminate()
    proc.wait(timeout=30)
    raise RuntimeError("prometheus did not become ready")


def counts(snapshot: Snapshot) -> dict[str, tuple[float, float, float]]:
    """Requests, errors and latency observations per version (versions with any)."""
    out = {}
    for version, c in snapshot.versions.items():
        row = (c.requests, c.errors, c.latency.cumulative[-1] if c.latency.cumulative else 0.0)
        if any(row):
            out[version] = row
    return out


def servers_total(servers: list[BackgroundServer], model: str) -> dict[str, list[float]]:
    """The replicas' own counters, summed (what Prometheus should answer once scraped)."""
    total: dict[str, list[float]] = {}
    for s in servers:
        own = parse_server_metrics(httpx.get(f"{s.url}/metrics").text, model)
        for version, row in counts(own).items():
            acc = total.setdefault(version, [0.0, 0.0, 0.0])
            for i, value in enumerate(row):
                acc[i] += value
    return total


def wait_for_scrape(source: PrometheusMetricsSource, servers: list[BackgroundServer]) -> None:
    """Poll Prometheus until its sums by version equal what the replicas counted."""
    want = {v: tuple(row) for v, row in servers_total(servers, source.model).items()}
    deadline = time.monotonic() + SCRAPE_TIMEOUT_S
    seen: dict[str, tuple[float, float, float]] = {}
    while time.monotonic() < deadline:
        seen = counts(source.snapshot())
        if seen == want:
            return
        time.sleep(0.1)  # polling Prometheus, a process we started
    raise AssertionError(f"Prometheus never caught up: it has {seen}, the servers {want}")


@pytest.fixture
def replicas(
    rollout_project: Any, request: pytest.FixtureRequest
) -> Iterator[list[BackgroundServer]]:
    from driftloop.registry import open_registry

    servers = []
    try:
        for seed in (3, 4):
            registry: Any = open_registry(rollout_project)
            if getattr(request, "param", "") == "flaky":
                registry = RegistryWithFlakyVersion(registry, "2", seed=seed)
            ctx = build_context(rollout_project, registry=registry, admin_token=TOKEN)
            servers.append(BackgroundServer(ctx).start())
        yield servers
    finally:
        for s in servers:
            s.stop()


@pytest.fixture
def prometheus(replicas: list[BackgroundServer], tmp_path: Path) -> Iterator[Prometheus]:
    jobs = {
        f"driftloop-{n}": s.url.removeprefix("http://") for n, s in zip("ab", replicas, strict=True)
    }
    prom = start_prometheus(tmp_path, jobs)
    try:
        yield prom
    finally:
        prom.proc.terminate()
        prom.proc.wait(timeout=30)


def controller(project: Any, replicas: list[BackgroundServer], prom_url: str) -> Any:
    from driftloop.registry import open_registry

    registry = open_registry(project)
    source = RecordingSource(prom_url, registry.model_name, SELECTOR)
    return RolloutController(
        registry=registry,
        router=Replicas([ServerAdminRouter(s.url, TOKEN) for s in replicas]),
        metrics=source,
        store=RolloutStore(project.state_dir / "state.db"),
        config=RolloutConfig(**CONFIG),
        clock=SimulatedClock(datetime(2026, 3, 2, 8, 0, tzinfo=UTC)),
        outcomes=LogOutcomeSource(project.state_dir, "revenue"),
    )


@pytest.fixture
def clients(replicas: list[BackgroundServer]) -> Iterator[list[httpx.Client]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(httpx.Client(base_url=s.url, timeout=30)) for s in replicas]


def traffic(
    ctl: Any, replicas: list[BackgroundServer], clients: list[httpx.Client], weights: list[float]
) -> Callable[[Any], None]:
    body = v2_body(feature_rows())
    sent = {"n": 0}

    def tick(_rollout: Any) -> None:
        weights.append(ctl.router.current().challenger_weight)
        for _ in range(PER_TICK):
            sent["n"] += 1
            client = clients[sent["n"] % len(clients)]
            client.post(
                f"/v2/models/{ctl.model}/infer",
                content=body,
                headers={"X-Routing-Key": f"customer-{sent['n']}"},
            )
        wait_for_scrape(ctl.metrics, replicas)

    return tick


def test_prometheus_answers_equal_the_replicas_counters(
    rollout_project: Any,
    replicas: list[BackgroundServer],
    prometheus: Prometheus,
    clients: list[httpx.Client],
) -> None:
    ctl = controller(rollout_project, replicas, prometheus.url)
    traffic(ctl, replicas, clients, [])(None)  # raises unless PromQL sums equal the two servers'
    snap = ctl.metrics.snapshot()
    assert snap.get("1").requests == PER_TICK
    lat = snap.get("1").latency
    assert lat.edges[-1] == float("inf") and list(lat.cumulative) == sorted(lat.cumulative)
    # each replica counted about half: the sum is over two instances, not one
    halves = [
        parse_server_metrics(httpx.get(f"{s.url}/metrics").text, ctl.model).get("1")
        for s in replicas
    ]
    assert [h.requests for h in halves] == [PER_TICK / 2, PER_TICK / 2]


def test_identical_challenger_is_promoted_from_promql_answers(
    rollout_project: Any,
    replicas: list[BackgroundServer],
    prometheus: Prometheus,
    clients: list[httpx.Client],
) -> None:
    ctl = controller(rollout_project, replicas, prometheus.url)
    weights: list[float] = []
    rollout = ctl.start("2")
    final = ctl.run(rollout.id, on_tick=traffic(ctl, replicas, clients, weights))

    assert final.state == "promoted", (final.reason, ctl.store.events(rollout.id)[-1].evidence)
    assert {10.0, 50.0} <= set(weights)
    events = ctl.store.events(rollout.id)
    assert [e.to_state for e in events] == ["pending", "step 1 (10%)", "step 2 (50%)", "promoted"]
    assert ctl.metrics.taken > 0
    for s in replicas:
        routes = s.ctx.routes_payload()
        assert routes["champion"] == "2" and routes["challenger"] is None
    assert ctl.registry.alias("champion").version == "2"


@pytest.mark.parametrize("replicas", ["flaky"], indirect=True)
def test_challenger_failing_5_percent_is_rolled_back_in_step_1_from_promql_answers(
    rollout_project: Any,
    replicas: list[BackgroundServer],
    prometheus: Prometheus,
    clients: list[httpx.Client],
) -> None:
    ctl = controller(rollout_project, replicas, prometheus.url)
    weights: list[float] = []
    rollout = ctl.start("2")
    final = ctl.run(rollout.id, on_tick=traffic(ctl, replicas, clients, weights))

    assert final.state == "rolled_back", final.reason
    assert max(weights) == 10.0
    decided = ctl.store.events(rollout.id)[-1]
    assert decided.from_state == "step 1 (10%)"
    evidence = decided.evidence
    assert evidence["error_rate"]["value"] > 0.02 or evidence["error_rate_test"]["passed"] is False
    # the errors the decision saw are Prometheus's: the sum over both replicas
    assert ctl.metrics.snapshot().get("2").errors == sum(
        parse_server_metrics(httpx.get(f"{s.url}/metrics").text, ctl.model).get("2").errors
        for s in replicas
    )
    for s in replicas:
        assert s.ctx.routes_payload()["challenger"] is None
    assert ctl.registry.alias("champion").version == "1"


def test_a_replica_restart_does_not_corrupt_the_window(
    rollout_project: Any,
    replicas: list[BackgroundServer],
    prometheus: Prometheus,
    clients: list[httpx.Client],
) -> None:
    """Replica b restarts (counters from 0) between two looks: the window stays exact."""
    ctl = controller(rollout_project, replicas, prometheus.url)
    source: PrometheusMetricsSource = ctl.metrics
    traffic(ctl, replicas, clients, [])(None)  # 300 requests to each replica
    base = source.snapshot()

    old = replicas[1]
    port = int(old.url.rsplit(":", 1)[1])
    old.stop()
    replicas[1] = BackgroundServer(
        build_context(rollout_project, admin_token=TOKEN), port=port
    ).start()
    body = v2_body(feature_rows())
    with httpx.Client(base_url=replicas[1].url, timeout=30) as b:
        for n in range(40):
            clients[0].post(
                f"/v2/models/{ctl.model}/infer",
                content=body,
                headers={"X-Routing-Key": f"late-{n}"},
            )
            b.post(
                f"/v2/models/{ctl.model}/infer",
                content=body,
                headers={"X-Routing-Key": f"late-{n}"},
            )
    # Prometheus has the restarted replica's 40 (not its old 300) and replica a's 340
    per_job = f'sum by (job) (driftloop_requests_total{{model="{ctl.model}"}})'
    deadline = time.monotonic() + SCRAPE_TIMEOUT_S
    jobs: dict[str, float] = {}
    while time.monotonic() < deadline and jobs != {"driftloop-a": 340.0, "driftloop-b": 40.0}:
        jobs = {labels["job"]: value for labels, value in source.query(per_job)}
        time.sleep(0.1)  # polling Prometheus, a process we started
    assert jobs == {"driftloop-a": 340.0, "driftloop-b": 40.0}

    window = source.snapshot().get("1").minus(base.get("1"))
    assert window.requests == 80.0
    assert window.latency.total == 80.0


def test_the_grafana_dashboards_promql_runs_on_the_real_prometheus(
    rollout_project: Any,
    replicas: list[BackgroundServer],
    prometheus: Prometheus,
    clients: list[httpx.Client],
) -> None:
    """Every dashboard expression is accepted by Prometheus; the traffic, latency and
    route panels answer with the versions the replicas served."""
    from driftloop.deploy.dashboard import dashboard_queries

    ctl = controller(rollout_project, replicas, prometheus.url)
    tick = traffic(ctl, replicas, clients, [])
    tick(None)
    tick(None)  # two scrapes of traffic at least: rate() needs two samples
    queries = dashboard_queries(ctl.model, rollout_project.config.monitoring)
    answers = {}
    for key, expr in queries.items():
        doc = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": expr}).json()
        assert doc["status"] == "success", (key, expr, doc.get("error"))
        answers[key] = doc["data"]["result"]
    served = {
        "traffic_share_per_version",
        "route_weight",
        "requests_per_version",
        "latency_per_version",
    }
    assert served <= {key.split("/")[0] for key in answers}
    for key, result in answers.items():
        if key.split("/")[0] in served:
            assert result, f"{key} returned nothing: {queries[key]}"
            assert {r["metric"].get("version") for r in result} >= {"1"}, (key, result)
