"""The scheduled challenger on a simulated clock: when the champion's data is
``loop.challenger_every_days`` old and no retrain started since, the loop retrains, gates
the version against the champion with the stricter tolerance, and only a version that
passes becomes a canary; the next is due that many days later."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from driftloop.clock import SimulatedClock
from driftloop.loop.assessor import newest_event_day
from driftloop.loop.controller import LoopController
from driftloop.loop.newrows import with_new_rows
from driftloop.loop.policy import Decision
from driftloop.loop.store import LoopStore
from driftloop.pipeline.train import run_training
from driftloop.project import Project
from driftloop.registry import open_registry
from driftloop.rollout.factory import open_controller
from driftloop.serving.server import BackgroundServer, build_context

TOKEN = "scheduled-challenger-test-token-0123"
AS_OF = date(2019, 5, 1)


def _with_schedule(project: Any, every: float | None) -> Project:
    loop = project.config.loop.model_copy(update={"challenger_every_days": every})
    return dataclasses.replace(project, config=project.config.model_copy(update={"loop": loop}))


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _checks(project: Project, days: list[int]) -> tuple[LoopStore, list[Any]]:
    clock = SimulatedClock(_midnight(AS_OF))
    registry = open_registry(project, clock)
    assert run_training(project, registry, AS_OF, actor="tests").alias == "champion"
    store = LoopStore(project.state_dir / "state.db")
    turns = []
    with BackgroundServer(build_context(project, registry=registry, clock=clock)) as server:
        loop = LoopController(
            project, registry, open_controller(project, server=server.url, clock=clock), clock
        )
        for day in days:
            clock.set(_midnight(AS_OF + timedelta(days=day)))
            turns.append(loop.check())
    return store, turns


def test_a_scheduled_challenger_is_trained_gated_and_canaried_when_due(
    project_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP_ADMIN_TOKEN", TOKEN)
    project = _with_schedule(project_copy, 28)
    store, turns = _checks(project, [27, 28, 29])
    assert [t.decision.action for t in turns] == ["none", "retrain", "none"]
    assert turns[1].decision.reason.startswith("scheduled challenger: the champion's data")
    model = project.model_name
    started = store.events(model, kinds=("retrain_started",))
    assert len(started) == 1 and started[0].evidence["scheduled"] is True
    assert store.retrains(model, scheduled=False) == []  # no cool-down for drift retrains
    trained = turns[1].trained
    assert trained is not None and trained.gate.champion_version == "1"
    vs = next(c for c in trained.gate.checks if c.name == "vs_champion")
    assert vs.threshold == pytest.approx(trained.gate.champion * 0.98)  # 2 % better
    assert "tolerance -2.0%" in vs.detail
    registry = open_registry(project)
    assert registry.get(trained.version).tags["driftloop.trigger"] == "schedule"
    outcome = store.events(model, kinds=("gate_passed", "gate_rejected"))
    assert len(outcome) == 1
    rollouts = store.events(model, kinds=("rollout_started",))
    if outcome[0].kind == "gate_passed":
        assert len(rollouts) == 1 and "scheduled challenger" in rollouts[0].message
    else:
        assert rollouts == [] and registry.alias("challenger") is None


def test_no_scheduled_challenger_when_it_is_off(
    project_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP_ADMIN_TOKEN", TOKEN)
    store, turns = _checks(_with_schedule(project_copy, 0), [28, 60])
    assert [t.decision.action for t in turns] == ["none", "none"]
    assert store.events(project_copy.model_name, kinds=("retrain_started",)) == []


def test_a_retrain_waits_while_no_labelled_row_arrived_since_the_last_one(
    project_copy: Any,
) -> None:
    """A table that gains rows once a month, checked daily: a retrain a week after the
    last one would learn the same rows; the loop holds it (blocker ``data``) and says so."""
    project = project_copy
    newest = newest_event_day(project)
    assert newest is not None
    now = _midnight(newest + timedelta(days=30))
    why = "degraded accuracy sustained (1 check); retraining"
    retrain = Decision("retrain", why, ("accuracy",))
    assert with_new_rows(project, [], retrain, now) is retrain  # no retrain yet
    earlier = _midnight(newest - timedelta(days=20))
    assert with_new_rows(project, [earlier], retrain, now) is retrain  # rows came after it
    later = _midnight(newest + timedelta(days=10))
    held = with_new_rows(project, [earlier, later], retrain, now)
    assert (held.action, held.blocker, held.triggers) == ("hold", "data", ("accuracy",))
    assert held.reason.startswith("degraded accuracy sustained (1 check); no labelled row since")
    assert held.reason.endswith("a retrain would learn the same rows")
