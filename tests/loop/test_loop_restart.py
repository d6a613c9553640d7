"""A controller stopped between a passed gate and the rollout's start resumes it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from driftloop.clock import SimulatedClock
from driftloop.loop.controller import LoopController
from driftloop.loop.store import LoopStore
from driftloop.pipeline.train import run_training
from driftloop.registry import open_registry
from driftloop.rollout.factory import open_controller
from driftloop.serving.server import BackgroundServer, build_context

TOKEN = "loop-restart-test-token-0123456789"


def test_a_gated_challenger_without_rollout_gets_one_after_a_restart(
    project_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP_ADMIN_TOKEN", TOKEN)
    clock = SimulatedClock(datetime(2019, 7, 1, tzinfo=UTC))
    registry = open_registry(project_copy, clock)
    run_training(project_copy, registry, actor="tests")
    second = run_training(project_copy, registry, actor="tests", on_pass="challenger")
    assert second.alias == "challenger"
    store = LoopStore(project_copy.state_dir / "state.db")
    # What the stopped controller had written: its retrain passed the gate, nothing after.
    store.record(registry.model_name, clock.now(), "retrain_started", "accuracy sustained")
    store.record(
        registry.model_name, clock.now(), "gate_passed", "v2 passed", version=second.version
    )
    with BackgroundServer(build_context(project_copy, registry=registry, clock=clock)) as server:
        rollouts = open_controller(project_copy, server=server.url, clock=clock)
        loop = LoopController(project_copy, registry, rollouts, clock, store=store)
        turn = loop.check()
        again = loop.check()  # the same check again starts nothing twice
    assert turn.rollout is not None and turn.rollout.version == second.version
    assert turn.decision.action == "none"  # nothing served yet: nothing to judge
    started = store.events(registry.model_name, kinds=("rollout_started",))
    assert len(started) == 1 and "resumed after a restart" in started[0].message
    assert again.rollout is not None and again.rollout.id == turn.rollout.id


def test_run_checks_at_its_own_pace_and_ticks_the_rollout_in_between(
    project_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses
    from datetime import timedelta

    monkeypatch.setenv("DRIFTLOOP_ADMIN_TOKEN", TOKEN)
    # the spec's 30-minute step deadline (the scenario fits a longer one to its pace)
    pace = {"check_interval_s": 6 * 3600.0, "min_duration_s": 300.0, "max_duration_s": 1800.0}
    rollout = project_copy.config.rollout.model_copy(update=pace)
    project = dataclasses.replace(
        project_copy, config=project_copy.config.model_copy(update={"rollout": rollout})
    )
    start = datetime(2019, 7, 1, tzinfo=UTC)
    clock = SimulatedClock(start)
    registry = open_registry(project, clock)
    run_training(project, registry, actor="tests")
    second = run_training(project, registry, actor="tests", on_pass="challenger")
    store = LoopStore(project.state_dir / "state.db")
    store.record(
        registry.model_name, clock.now(), "gate_passed", "v2 passed", version=second.version
    )
    with BackgroundServer(build_context(project, registry=registry, clock=clock)) as server:
        rollouts = open_controller(project, server=server.url, clock=clock)
        loop = LoopController(project, registry, rollouts, clock, store=store)
        turns: list[Any] = []
        loop.run(until=start + timedelta(days=3), on_turn=turns.append)
        latest = rollouts.store.latest(registry.model_name)
    assert clock.now() == start + timedelta(days=3)
    # one check a day, although the rollout was ticked every 6 hours in between
    assert [t.at for t in turns] == [start + timedelta(days=d) for d in range(3)]
    assert len(store.events(registry.model_name, kinds=("check",))) == 3
    # The rollout began at the first check and, with no traffic, ran into its deadline
    # (rollout.max_duration_s, 30 min) at the second tick: 12 hours in, between checks.
    assert latest is not None and latest.version == second.version
    assert latest.state == "rolled_back" and latest.updated_at == start + timedelta(hours=12)
    kinds = [e.kind for e in store.events(registry.model_name) if e.kind != "check"]
    assert kinds[-3:] == ["rollout_started", "rollout_step", "rolled_back"], kinds
