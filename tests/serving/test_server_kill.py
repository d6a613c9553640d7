"""``driftloop serve`` killed with SIGKILL in the middle of a log flush (``DRIFTLOOP_CRASH_AT``:
after the segment's temporary file is written, before its rename), then restarted: it
serves the route table committed before the crash, readers never see a partial segment,
and the rows lost are exactly those acknowledged since the last completed flush."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.cli.test_serve_cli import free_port, wait_ready
from tests.serving.test_server import feature_rows, v2_body

from driftloop.faults import CRASH_ENV
from driftloop.storage.segments import read_segments

TOKEN = "server-kill-test-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def serve(root: Path, port: int, crash_at: str | None) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DRIFTLOOP_ADMIN_TOKEN": TOKEN,
        # no timed flush during the test: /admin/flush decides when a flush runs
        "DRIFTLOOP__SERVING__LOG_FLUSH_INTERVAL_S": "3600",
    }
    env.pop(CRASH_ENV, None)
    if crash_at:
        env[CRASH_ENV] = crash_at
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "driftloop",
            "serve",
            "--project",
            str(root),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=60)


def infer(client: httpx.Client, url: str, model: str, request_id: str) -> None:
    answer = client.post(
        f"{url}/v2/models/{model}/infer",
        content=v2_body(feature_rows()),
        headers={"X-Request-Id": request_id},
    )
    assert answer.status_code == 200, answer.text


def test_server_killed_during_a_flush_restarts_on_its_routes_and_loses_one_flush(
    canary_copy: Any, processes: list[subprocess.Popen[str]]
) -> None:
    project_root: Path = canary_copy.root
    model = canary_copy.model_name
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    predictions = project_root / ".driftloop" / "predictions"
    first = serve(project_root, port, "log.segment_written#2")
    processes.append(first)
    wait_ready(url, first)
    with httpx.Client(timeout=30) as client:
        routes = client.post(f"{url}/admin/weights", json={"challenger_weight": 30}, headers=ADMIN)
        assert routes.status_code == 200, routes.text
        for i in range(20):
            infer(client, url, model, f"kept-{i}")
        flushed = client.post(f"{url}/admin/flush", headers=ADMIN).json()
        assert flushed == {"flushed_rows": 20}
        for i in range(15):
            infer(client, url, model, f"lost-{i}")  # acknowledged, buffered, not yet flushed
        with pytest.raises(httpx.TransportError):
            client.post(f"{url}/admin/flush", headers=ADMIN)  # dies writing this segment
    first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL

    # The dying flush left its temporary file; cut it in half as a kill mid-write would.
    partial = list(predictions.rglob(".part-*.tmp"))
    assert len(partial) == 1
    partial[0].write_bytes(partial[0].read_bytes()[: partial[0].stat().st_size // 2])
    log = read_segments(predictions)
    assert sorted(log["request_id"]) == sorted(f"kept-{i}" for i in range(20))

    second = serve(project_root, port, None)
    processes.append(second)
    wait_ready(url, second)
    with httpx.Client(timeout=30) as client:
        routes = client.get(f"{url}/admin/routes", headers=ADMIN).json()
        assert (routes["champion"], routes["challenger"], routes["challenger_weight"]) == (
            "1",
            "2",
            30.0,
        )
        infer(client, url, model, "after-restart")
    second.send_signal(signal.SIGTERM)
    second.communicate(timeout=60)
    assert second.returncode == 0
    log = read_segments(predictions)
    ids = set(log["request_id"])
    assert {f"kept-{i}" for i in range(20)} | {"after-restart"} == ids  # lost-*: one flush
