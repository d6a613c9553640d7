"""``LoopController.run`` on a simulated clock while the registry, then the server, is down:
it pauses (one ``paused`` event naming the dependency, one warning), checks and trains
nothing meanwhile, and records ``resumed`` when the dependency is back."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.backends.test_redis_postgres import free_port
from tests.serving.test_dependencies_down import Outage

from driftloop.clock import SimulatedClock
from driftloop.loop.controller import LoopController
from driftloop.registry import open_registry
from driftloop.rollout.factory import open_controller
from driftloop.serving.server import BackgroundServer, build_context

TOKEN = "loop-paused-test-token-0123456789"


def test_loop_pauses_while_registry_or_server_is_down_and_resumes(
    canary_copy: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DRIFTLOOP_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")  # see Outage's module
    start = datetime(2019, 6, 20, tzinfo=UTC)
    clock = SimulatedClock(start)
    registry = open_registry(canary_copy, clock)
    port = free_port()
    server = BackgroundServer(build_context(canary_copy, registry=registry, clock=clock), port)
    server.start()
    rollouts = open_controller(canary_copy, server=f"http://127.0.0.1:{port}", clock=clock)
    loop = LoopController(canary_copy, registry, rollouts, clock)
    model, minutes = loop.model, timedelta(minutes=1)
    caplog.set_level(logging.WARNING, logger="driftloop.loop")

    outage = Outage(canary_copy.state_dir / "mlflow.db")
    loop.run(until=start + 10 * minutes)  # probed every rollout.check_interval_s (10 s)
    assert loop.outages.paused() is not None
    outage.end()
    loop.run(until=start + 20 * minutes)  # resumes, and the first check runs at once
    assert loop.outages.paused() is None

    server.stop()
    loop.run(until=start + 30 * minutes)
    server = BackgroundServer(build_context(canary_copy, registry=registry, clock=clock), port)
    with server:
        loop.run(until=start + 40 * minutes)

    found = [e for e in loop.store.events(model) if e.kind != "check"]
    assert [(e.kind, e.at - start) for e in found] == [
        ("paused", 0 * minutes),
        ("resumed", 10 * minutes),
        ("paused", 20 * minutes),
        ("resumed", 30 * minutes),
    ]
    assert [e.evidence.get("dependency") for e in found[::2]] == ["registry", "server"]
    assert "paused: the registry is unreachable: model registry at" in found[0].message
    assert found[1].message == "resumed: the registry answers again after 10 min"
    checks = loop.store.events(model, kinds=("check",))
    # none while paused; a run (like a restarted controller) checks at once when it can
    assert [e.at - start for e in checks] == [10 * minutes, 30 * minutes]
    warnings = [r.getMessage() for r in caplog.records if "loop paused" in r.getMessage()]
    assert len(warnings) == 2  # one per outage, not one per probe
