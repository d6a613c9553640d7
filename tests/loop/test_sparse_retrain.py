"""A sparse daily series (one event a day): the loop's retrain reaches back over as many
days as its holdout needs (the loop's 7 holdout days hold 7 rows, under the metric's
minimum), so the retrain is judged against the champion; and a classifier whose newest
labels hold one class over more than a third of its window waits with a recorded reason,
never a traceback."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.clock import SimulatedClock
from driftloop.features.store import FeatureStore
from driftloop.loop.controller import LoopController
from driftloop.loop.policy import Decision
from driftloop.loop.store import LoopStore
from driftloop.pipeline.train import run_training
from driftloop.project import Project
from driftloop.registry import open_registry
from driftloop.rollout.factory import open_controller
from driftloop.serving.server import BackgroundServer, build_context

TOKEN = "sparse-retrain-test-token-0123456789"
FIRST = date(2021, 1, 1)


def _one_a_day(path: Path, *, binary: bool, quiet_from: int = 10_000) -> None:
    """1,100 days, one row a day; with ``binary`` no positive from day ``quiet_from`` on."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=1100)
    if binary:
        y = (x + rng.normal(0, 1, x.size) > 0.0).astype(float)
        y[quiet_from:] = 0.0
    else:
        y = rng.poisson(np.exp(3.0 + 0.3 * x)).astype(float)
    days = [(FIRST + timedelta(days=i)).isoformat() for i in range(x.size)]
    pd.DataFrame({"day": days, "region": "r1", "x": x, "y": y}).to_csv(path, index=False)


def _project(tmp_path: Path, **table: object) -> Project:
    source = tmp_path / "table.csv"
    _one_a_day(source, **table)  # type: ignore[arg-type]
    root = tmp_path / "proj"
    made = CliRunner().invoke(
        app,
        [
            "init",
            str(root),
            "--data",
            str(source),
            "--entity",
            "region",
            "--timestamp",
            "day",
            "--target",
            "y",
        ],
    )
    assert made.exit_code == 0, made.output
    project = Project.load(root)
    FeatureStore(project).apply()
    return project


def _retrain(project: Project, v1_day: date, at: date) -> tuple[LoopController, object]:
    clock = SimulatedClock(datetime(v1_day.year, v1_day.month, v1_day.day, tzinfo=UTC))
    registry = open_registry(project, clock)
    assert run_training(project, registry, v1_day, actor="tests").gate.passed
    clock.set(datetime(at.year, at.month, at.day, tzinfo=UTC))
    decision = Decision(
        "retrain",
        "degraded accuracy sustained",
        ("accuracy",),
        since=at - timedelta(days=8),
        recent_from=at - timedelta(days=14),
    )
    with BackgroundServer(build_context(project, registry=registry, clock=clock)) as server:
        loop = LoopController(
            project, registry, open_controller(project, server=server.url, clock=clock), clock
        )
        trained, _rollout = loop.retrain(decision)
    return loop, trained


def test_a_one_event_a_day_series_gets_its_retrain_judged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP_ADMIN_TOKEN", TOKEN)
    project = _project(tmp_path, binary=False)
    assert project.config.loop.retrain_holdout_days == 7  # 7 rows: under the metric's 10
    loop, trained = _retrain(project, date(2022, 12, 1), date(2023, 3, 1))
    assert trained is not None
    assert trained.rows["holdout"] == 10 and trained.rows["validation"] == 10  # type: ignore[attr-defined]
    assert trained.gate.champion is not None  # type: ignore[attr-defined]
    kinds = [e.kind for e in LoopStore(project.state_dir / "state.db").events(loop.model)]
    assert kinds[0] == "retrain_started" and kinds[1] in ("gate_passed", "gate_rejected")


def test_a_holdout_without_both_classes_makes_the_retrain_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP_ADMIN_TOKEN", TOKEN)
    project = _project(tmp_path, binary=True, quiet_from=800)  # 2023-03-12
    assert project.config.training.task == "classification"
    loop, trained = _retrain(project, date(2022, 12, 1), date(2023, 9, 1))
    assert trained is None
    events = LoopStore(project.state_dir / "state.db").events(loop.model)
    assert [e.kind for e in events] == ["retrain_started", "retrain_waiting"]
    assert "10 labelled rows each and both classes do not fit" in events[1].message
    assert "more than 33% of the window's" in events[1].message
    assert "the retrain waits for more labelled days" in events[1].message
    assert len(open_registry(project).versions()) == 1  # v1 only
