"""``driftloop rollout start`` as a real process, killed with SIGKILL (``DRIFTLOOP_CRASH_AT``)
at one state of the rollout after another: each restart resumes the same rollout and is
killed at the next point; the last one runs it to the end. It ends promoted once, with no
transition logged twice, and registry aliases, the server's route table and its stored copy
agree. (test_crash.py kills it in-process at 15 points, at no process start-up cost.)

The server is real (uvicorn on 127.0.0.1) and serves seeded, identical requests from a
thread while the rollout runs on wall time with short intervals (an A/A rollout: v2 is v1
retrained on the same data, so it must promote)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.serving.test_server import feature_rows, v2_body

from driftloop.faults import CRASH_ENV
from driftloop.project import Project
from driftloop.rollout.factory import open_controller
from driftloop.rollout.store import RolloutStore
from driftloop.serving.server import BackgroundServer, build_context
from driftloop.serving.service import RoutingStore

TOKEN = "kill9-test-token-0123456789"
# Wall time here: checks every 50 ms, no minimum step duration, the p99 gates off (real,
# sub-millisecond latencies on a shared machine; see test_server_rollout.py).
FAST_ENV = {
    "DRIFTLOOP__ROLLOUT__CHECK_INTERVAL_S": "0.05",
    "DRIFTLOOP__ROLLOUT__MIN_REQUESTS": "100",
    "DRIFTLOOP__ROLLOUT__GUARD_MIN_REQUESTS": "60",
    "DRIFTLOOP__ROLLOUT__MIN_DURATION_S": "0",
    "DRIFTLOOP__ROLLOUT__MAX_DURATION_S": "120",
    "DRIFTLOOP__ROLLOUT__PROMOTE_P99_RATIO": "1000",
    "DRIFTLOOP__ROLLOUT__ROLLBACK_P99_RATIO": "1000",
}
# (crash point, the rollout's stored state / applied flag / live weight when the process died)
CHAIN = [
    ("rollout.created", "pending", True, 0.0),  # before the first step: nothing moved
    ("rollout.stored.step", "step", False, 0.0),  # step 1 (10 %) stored, weight not set
    ("rollout.weight_set", "step", False, 10.0),  # 10 % set on the server, not marked applied
    ("rollout.judged#2", "step", True, None),  # during the judgement of a step's window
    ("rollout.stored.promoted", "promoted", False, None),  # decided, no alias moved
    ("aliases.champion_moved", "promoted", False, None),  # challenger alias not cleared
]
EVENTS = [
    ("", "pending"),
    ("pending", "step 1 (10%)"),
    ("step 1 (10%)", "step 2 (50%)"),
    ("step 2 (50%)", "promoted"),
]


@pytest.fixture
def served(rollout_project: Any) -> Iterator[BackgroundServer]:
    ctx = build_context(rollout_project, admin_token=TOKEN)
    with BackgroundServer(ctx) as server:
        yield server


class Requests:
    """Identical V2 requests, each with its own routing key, from a thread until stopped;
    only while a rollout step is live (starting processes get the CPU otherwise)."""

    def __init__(self, url: str, model: str, store: RolloutStore) -> None:
        self.url, self.model, self.store = url, model, store
        self.stop = threading.Event()
        self.sent = 0
        self.failed = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        body = v2_body(feature_rows())
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self.stop.is_set():
                live = self.store.active(self.model)
                if live is None or live.state != "step":
                    self.stop.wait(0.02)  # poll for the rollout's next step
                    continue
                for _ in range(50):
                    self.sent += 1
                    answer = client.post(
                        f"/v2/models/{self.model}/infer",
                        content=body,
                        headers={"X-Routing-Key": f"c-{self.sent}"},
                    )
                    self.failed += answer.status_code != 200

    def __enter__(self) -> Requests:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)


def rollout_cli(project: Any, url: str, crash_at: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "driftloop",
            "rollout",
            "start",
            "2",
            "-p",
            str(project.root),
            "--server",
            url,
        ],
        env={**os.environ, CRASH_ENV: crash_at},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_rollout_killed_with_sigkill_in_each_state_resumes_and_promotes_once(
    rollout_project: Any, served: BackgroundServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**FAST_ENV, "DRIFTLOOP_ADMIN_TOKEN": TOKEN}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(CRASH_ENV, raising=False)
    restarted = open_controller(Project.load(rollout_project.root), server=served.url)
    registry, store, model = restarted.registry, restarted.store, restarted.model
    ids = set()
    with Requests(served.url, model, store) as traffic:
        for point, state, applied, weight in CHAIN:
            killed = rollout_cli(rollout_project, served.url, point)
            assert killed.returncode == -signal.SIGKILL, (point, killed.stdout, killed.stderr)
            at_kill = store.active(model)  # the kill left it unfinished, whatever the point
            assert at_kill is not None, point
            assert (at_kill.state, at_kill.applied) == (state, applied), point
            if weight is not None:
                assert served.ctx.routes_payload()["challenger_weight"] == weight, point
            ids.add(at_kill.id)
        resumed = restarted.start("2")
        final = restarted.run(resumed.id)
    assert ids == {final.id}  # every restart resumed the one rollout
    assert traffic.failed == 0

    assert final.state == "promoted" and final.applied
    assert [(e.from_state, e.to_state) for e in store.events(final.id)] == EVENTS
    assert store.active(model) is None
    champion, challenger = registry.alias("champion"), registry.alias("challenger")
    assert champion is not None and champion.version == "2" and challenger is None
    promotions = [m for m in registry.alias_history("champion") if m.kind == "promote"]
    assert [m.to_version for m in promotions] == ["2"]
    canaries = [m for m in registry.alias_history("challenger") if m.kind == "canary"]
    assert len(canaries) == 1
    routes = served.ctx.routes_payload()
    live = (routes["champion"], routes["challenger"], routes["challenger_weight"])
    assert live == ("2", None, 0.0)
    stored = RoutingStore(rollout_project.state_dir / "state.db", model).load()
    assert stored is not None and (stored.champion, stored.challenger) == ("2", None)
