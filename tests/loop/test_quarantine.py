"""A damaged log segment is moved aside, recorded, reported, and the checks go on.

A real server logs a few days of seeded traffic; one prediction segment is overwritten
with 200 random bytes (what a bad disk or a partial copy leaves) and one feedback segment
is cut short. ``driftloop monitor`` runs as a real process: no traceback, the damaged
files are in the quarantine folder byte for byte, and the report counts every row of
the segments that still read. ``doctor`` fails its one check, the server's counter
counts them, and the loop records them as events.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from tests.conftest import copy_with_registry

from driftloop.features.store import FeatureStore
from driftloop.harness.traffic import replay_days
from driftloop.project import Project
from driftloop.serving.server import BackgroundServer, build_context
from driftloop.storage.quarantine import QUARANTINE_DIR, read_or_quarantine, records
from driftloop.storage.segments import read_segments

DAYS = [date(2019, 5, 6) + timedelta(days=i) for i in range(6)]


@pytest.fixture(scope="module")
def served(trained_project: Any, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """v1 champion serving six days; every day's log in its own segments."""
    project: Project = copy_with_registry(trained_project, tmp_path_factory.mktemp("q") / "shop")
    with BackgroundServer(build_context(project)) as server:
        for day in DAYS:
            replay_days(FeatureStore(project), server.url, [day])
            server.ctx.flush_logs()
    return project


def _copy(project: Project, target: Path) -> Project:
    """A copy with its registry; its config already names the shared artifacts."""
    shutil.copytree(project.root, target)
    return Project.load(target)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "driftloop", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_damaged_segment_is_quarantined_and_the_checks_go_on(
    served: Project, tmp_path: Path
) -> None:
    project = _copy(served, tmp_path / "shop")
    state = project.state_dir
    segments = sorted((state / "predictions").glob("*/part-*.parquet"))
    feedback = sorted((state / "feedback").glob("*/part-*.parquet"))
    assert len(segments) >= 3 and len(feedback) >= 3
    all_rows = len(read_segments(state / "predictions"))
    bad, cut = segments[1], feedback[2]
    lost = len(pd.read_parquet(bad))
    garbage = np.random.default_rng(7).bytes(200)
    bad.write_bytes(garbage)
    cut_bytes = cut.read_bytes()[: len(cut.read_bytes()) // 2]
    cut.write_bytes(cut_bytes)

    doctor = _cli("doctor", "-p", str(project.root), "--json")
    check = next(c for c in json.loads(doctor.stdout)["checks"] if c["id"] == "logs.readable")
    assert not check["passed"] and "2 damaged segment(s) in place" in check["seen"]
    assert bad.exists()  # the doctor only reads

    monitored = _cli("monitor", "-p", str(project.root))
    assert monitored.returncode == 0, monitored.stderr
    assert "Traceback" not in monitored.stdout + monitored.stderr
    assert f"quarantined {bad}" in monitored.stdout.replace("\n", "")
    assert "2 damaged file(s) quarantined so far" in monitored.stdout

    found = records(state)
    assert {(r.log, Path(r.source)) for r in found} == {("predictions", bad), ("feedback", cut)}
    moved = state / QUARANTINE_DIR / bad.relative_to(state)
    assert moved.read_bytes() == garbage and not bad.exists()  # nothing lost, only moved
    assert (state / QUARANTINE_DIR / cut.relative_to(state)).read_bytes() == cut_bytes
    assert all("magic bytes" in r.reason for r in found)
    assert len(read_segments(state / "predictions")) == all_rows - lost  # every readable row
    assert len(records(state)) == 2  # read again: nothing more to move

    doc = json.loads(_cli("doctor", "-p", str(project.root), "--json").stdout)
    check = next(c for c in doc["checks"] if c["id"] == "logs.readable")
    assert not check["passed"] and "0 damaged" in check["seen"] and "2 file(s)" in check["seen"]

    with BackgroundServer(build_context(project)) as server:
        metrics = httpx.get(f"{server.url}/metrics").text
    assert 'driftloop_segments_quarantined_total{log="predictions"} 1.0' in metrics
    assert 'driftloop_segments_quarantined_total{log="feedback"} 1.0' in metrics


def test_a_query_error_on_readable_segments_moves_nothing(served: Project) -> None:
    from driftloop.errors import DataError

    with pytest.raises(DataError, match="every segment reads on its own"):
        read_segments(served.state_dir / "predictions", "no_such_column > 1")
    assert records(served.state_dir) == []


def test_the_hook_moves_an_unreadable_state_file_of_another_owner(tmp_path: Path) -> None:
    day = tmp_path / "state" / "daily" / "2019-05-06"
    day.mkdir(parents=True)
    good, bad = day / "agg-1.json", day / "agg-2.json"
    good.write_text('{"rows": 3}')
    bad.write_text('{"rows": ')
    read = [
        read_or_quarantine(p, lambda p: json.loads(p.read_text()), tmp_path / "state")
        for p in (good, bad)
    ]
    assert read == [{"rows": 3}, None]
    (record,) = records(tmp_path / "state")
    assert record.log == "daily" and "JSONDecodeError" in record.reason
    assert Path(str(record.moved_to)).read_text() == '{"rows": '


def test_the_loop_records_each_quarantined_file_once(
    served: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftloop.clock import SimulatedClock
    from driftloop.loop.controller import LoopController
    from driftloop.registry import open_registry
    from driftloop.rollout.factory import open_controller

    monkeypatch.setenv("DRIFTLOOP_ADMIN_TOKEN", "quarantine-test-token-0123456789")
    project = _copy(served, tmp_path / "shop")
    victim = sorted((project.state_dir / "predictions").glob("*/part-*.parquet"))[0]
    victim.write_bytes(b"\x00" * 64)
    clock = SimulatedClock(datetime(2019, 5, 12, tzinfo=UTC))
    registry = open_registry(project, clock)
    with BackgroundServer(build_context(project, registry=registry, clock=clock)) as server:
        rollouts = open_controller(project, server=server.url, clock=clock)
        loop = LoopController(project, registry, rollouts, clock)
        first = loop.check()
        loop.check()
    assert first.signals.rows > 0  # judged on the rest
    events = loop.store.events(registry.model_name, kinds=("quarantined",))
    assert len(events) == 1 and str(victim) in events[0].message
