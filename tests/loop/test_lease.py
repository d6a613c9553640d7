"""One active controller per project: the lease in the state database.

On a simulated clock: taking, renewing, expiring, taking over, releasing. With real
processes: two ``driftloop loop run`` on one project, the second says who holds the
lease and waits; the first is killed with SIGKILL and the second takes over within the
lease time and checks.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from tests.conftest import copy_with_registry

from driftloop.clock import SimulatedClock
from driftloop.loop.lease import LoopLease
from driftloop.loop.store import LoopStore
from driftloop.project import Project
from driftloop.serving.server import BackgroundServer, build_context

TOKEN = "loop-lease-test-token-0123456789"
LEASE_S = 5.0


def test_a_held_lease_is_refused_until_it_expires_then_taken_over(tmp_path: Path) -> None:
    clock = SimulatedClock(datetime(2026, 1, 1, tzinfo=UTC))
    db = tmp_path / "state.db"
    first = LoopLease(db, "m", clock, 30.0, holder="a")
    second = LoopLease(db, "m", clock, 30.0, holder="b")
    took = first.acquire()
    assert took.holder == "a" and took.taken_from is None
    clock.advance(timedelta(seconds=20))
    refused = second.acquire()
    assert refused.holder == "a" and refused.expires_at == clock.now() + timedelta(seconds=10)
    assert first.renew()  # renewed at 20 s: now held to 50 s
    clock.advance(timedelta(seconds=29))
    assert second.acquire().holder == "a"
    clock.advance(timedelta(seconds=1))  # 30 s after the last renewal
    taken = second.acquire()
    assert (taken.holder, taken.taken_from) == ("b", "a")
    assert not first.renew()  # the old holder learns it lost the lease
    second.release()
    assert first.acquire().holder == "a" and first.current() is not None


def test_wait_polls_on_the_clock_and_reports_the_holder_once(tmp_path: Path) -> None:
    clock = SimulatedClock(datetime(2026, 1, 1, tzinfo=UTC))
    db = tmp_path / "state.db"
    LoopLease(db, "m", clock, 30.0, holder="a").acquire()
    heard: list[str] = []
    got = LoopLease(db, "m", clock, 30.0, holder="b").wait(on_wait=lambda h: heard.append(h.holder))
    assert got is not None and got.holder == "b" and heard == ["a"]
    assert clock.now() == datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)  # no later than expiry
    gave_up = LoopLease(db, "m", clock, 30.0, holder="c").wait(until=clock.now())
    assert gave_up is None


class Lines:
    """A process's stdout, line by line, with a deadline on each wait."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.stream = stream
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line)

    def until(self, text: str, timeout_s: float = 180.0) -> str:
        deadline = datetime.now(UTC) + timedelta(seconds=timeout_s)
        while True:
            left = (deadline - datetime.now(UTC)).total_seconds()
            line = self.lines.get(timeout=max(left, 0.01))
            self.seen.append(line)
            if text in line:
                return line

    def close(self) -> None:
        """After the process ended: the reader has met the end of the pipe."""
        self.thread.join(timeout=30)
        self.stream.close()


def loop_run(
    project: Project, url: str, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``driftloop loop run`` on ``project`` as a child process, its output piped."""
    env = {
        **os.environ,
        "DRIFTLOOP_ADMIN_TOKEN": TOKEN,
        "DRIFTLOOP__LOOP__LEASE_S": str(LEASE_S),
        "COLUMNS": "300",
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "driftloop",
            "loop",
            "run",
            "-p",
            str(project.root),
            "--server",
            url,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_a_second_controller_waits_and_takes_over_from_a_killed_one(
    trained_project: Any, tmp_path: Path
) -> None:
    project: Project = copy_with_registry(trained_project, tmp_path / "shop")
    store = LoopStore(project.state_dir / "state.db")
    with BackgroundServer(build_context(project, admin_token=TOKEN)) as server:
        first = loop_run(project, server.url)
        second = None
        outputs = [out_first := Lines(first.stdout)]  # type: ignore[arg-type]
        try:
            out_first.until(" none: ")  # its first check is done: it holds the lease
            second = loop_run(project, server.url)
            outputs.append(out_second := Lines(second.stdout))  # type: ignore[arg-type]
            waiting = out_second.until("another controller is active")
            assert f":{first.pid} holds the lease" in waiting
            checks = len(store.events(project.model_name, kinds=("check",)))
            assert checks == 1  # only the holder checked

            first.send_signal(signal.SIGKILL)
            killed_at = datetime.now(UTC)
            assert first.wait(timeout=30) == -signal.SIGKILL
            out_second.until(" none: ")  # the second took over and checked
            taken = store.events(project.model_name, kinds=("lease_acquired",))
            assert [
                e.evidence["holder"].endswith(f":{p}")
                for e, p in zip(taken, (first.pid, second.pid), strict=True)
            ] == [True, True]
            assert taken[1].evidence["taken_from"] == taken[0].evidence["holder"]
            # within the lease time of the kill, plus one poll and a scheduling margin
            late_s = (taken[1].at - killed_at).total_seconds()
            assert 0.0 < late_s <= LEASE_S + LEASE_S / 10 + 1.0, late_s
            assert len(store.events(project.model_name, kinds=("check",))) == 2

            second.send_signal(signal.SIGTERM)  # a graceful stop (a pod's) releases the lease
            assert second.wait(timeout=60) == 0, out_second.seen
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=30)
            for output in outputs:
                output.close()
    assert (
        LoopLease(
            project.state_dir / "state.db",
            project.model_name,
            SimulatedClock(datetime.now(UTC)),
            LEASE_S,
        ).current()
        is None
    )


@pytest.mark.parametrize("lease_s", [0.0, -1.0])
def test_a_lease_needs_a_positive_time(tmp_path: Path, lease_s: float) -> None:
    with pytest.raises(ValueError, match="lease_s must be > 0"):
        LoopLease(tmp_path / "state.db", "m", SimulatedClock(datetime.now(UTC)), lease_s)
