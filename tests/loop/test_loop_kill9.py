"""The loop controller as a real process, killed with SIGKILL (``DRIFTLOOP_CRASH_AT``)
before and after each step of a retrain: training, the gate, registration, the rollout's
start. Each restart is killed at the next point of its chain; the last one runs the turn
to its end. Every chain ends as an uninterrupted turn does (test_loop_run.py: retrain,
gate_passed, rollout_started): one version registered by the loop, the challenger, and
one rollout of it; no cool-down held a retrain that never registered anything.

The turn's assessment is given (tests/loop/loop_child.py: the champion's accuracy
degraded); the rest is real: the policy, LightGBM training, the gate, the MLflow
registry, the rollout controller and the server (uvicorn on 127.0.0.1) it drives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import copy_project, copy_with_registry

from driftloop.faults import CRASH_ENV, CRASH_POINTS
from driftloop.loop.recovery import RETRAIN_TAG
from driftloop.loop.store import LoopStore
from driftloop.project import Project
from driftloop.registry import CHALLENGER, CHAMPION, open_registry
from driftloop.rollout.store import RolloutStore
from driftloop.serving.server import BackgroundServer, build_context

TOKEN = "loop-kill9-test-token-0123456789"
AT = "2019-07-10T06:00:00+00:00"  # five weeks after the shift; data to 2019-07-19
REPO = Path(__file__).resolve().parents[2]
# Before registration a kill loses the retrain: the restart records retrain_interrupted
# and trains again. From registration on it finishes what was registered. Each chain
# passes the points in the order a retrain reaches them.
CHAINS = {
    "before_registration": [
        "loop.retrain_recorded",
        "loop.trained",
        "loop.gated",
        "train.registered",
        "loop.rollout_started",
    ],
    "registered": ["loop.registered", "loop.rollout_recorded"],
    "gate_recorded": ["loop.gate_recorded", "rollout.created"],
}
LOST = {"loop.retrain_recorded", "loop.trained", "loop.gated"}


def test_every_loop_crash_point_is_in_a_chain() -> None:
    covered = {p for chain in CHAINS.values() for p in chain}
    assert {p for p in CRASH_POINTS if p.startswith(("loop.", "train."))} <= covered


@pytest.fixture(scope="module")
def before_shift(applied_project: Any, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """v1 champion, trained before the shift (as of 2019-05-01)."""
    from driftloop.pipeline.train import run_training

    project: Project = copy_project(applied_project, tmp_path_factory.mktemp("k9") / "shop")
    run_training(project, open_registry(project), date(2019, 5, 1), actor="tests")
    return project


@pytest.fixture
def served(before_shift: Project, tmp_path: Path) -> Iterator[tuple[Project, str]]:
    project: Project = copy_with_registry(before_shift, tmp_path / "shop")
    with BackgroundServer(build_context(project, admin_token=TOKEN)) as server:
        yield project, server.url


def _check(project: Project, url: str, crash_at: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DRIFTLOOP_ADMIN_TOKEN": TOKEN,
        CRASH_ENV: crash_at,
        "PYTHONPATH": str(REPO),
    }
    return subprocess.run(
        [sys.executable, "-m", "tests.loop.loop_child", "check", str(project.root), url, AT],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
    )


@pytest.mark.parametrize("chain", list(CHAINS))
def test_a_retrain_killed_at_each_step_ends_as_an_uninterrupted_one(
    served: tuple[Project, str], chain: str
) -> None:
    project, url = served
    for point in CHAINS[chain]:
        killed = _check(project, url, point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stdout, killed.stderr)
    final = _check(project, url, "")
    assert final.returncode == 0, final.stderr

    registry = open_registry(Project.load(project.root))
    versions = registry.versions()
    assert sorted(v.version for v in versions) == ["1", "2"]
    retrained = next(v for v in versions if v.version == "2")
    assert retrained.tags[RETRAIN_TAG] and retrained.gate == "passed"
    champion, challenger = registry.alias(CHAMPION), registry.alias(CHALLENGER)
    assert champion is not None and champion.version == "1"
    assert challenger is not None and challenger.version == "2"
    rollouts = RolloutStore(project.state_dir / "state.db").recent(registry.model_name)
    assert [(r.version, r.terminal) for r in rollouts] == [("2", False)]

    store = LoopStore(project.state_dir / "state.db")
    events = store.events(registry.model_name)
    kinds = [e.kind for e in events]
    lost = sum(p in LOST for p in CHAINS[chain])
    assert kinds.count("retrain_started") == lost + 1
    assert kinds.count("retrain_interrupted") == lost
    settled = [
        k
        for k in kinds
        if k
        in (
            "drift_detected",
            "retrain_failed",
            "gate_passed",
            "gate_rejected",
            "rollout_started",
            "rollout_refused",
        )
    ]
    assert settled == ["drift_detected", "gate_passed", "rollout_started"], kinds
    assert len(store.retrains(registry.model_name)) == 1
    # a restart after the rollout began holds for it; none held for a cool-down or a cap
    assert {e.evidence["blocker"] for e in events if e.kind == "hold"} <= {"rollout"}
