"""``driftloop serve`` as a process: starts, answers, stops on SIGTERM with its log flushed;
``driftloop features skew`` then checks what it served."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import httpx
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.storage.segments import read_segments


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[str], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"server exited early: {proc.stderr.read() if proc.stderr else ''}"
            )
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # polling a process we started, not waiting on our own code
    raise AssertionError("server not ready in time")


def test_serve_answers_then_stops_cleanly_and_skew_checks_the_log(canary_project: Any) -> None:
    port = free_port()
    env = {**os.environ, "DRIFTLOOP_ADMIN_TOKEN": "t"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "driftloop",
            "serve",
            "--project",
            str(canary_project.root),
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
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc)
        entities = [
            {"store_id": s, "product_id": p, "request_id": f"cli-{s}-{p}"}
            for s in range(3)
            for p in range(4)
        ]
        r = httpx.post(f"{url}/v1/predict", json={"entities": entities}, timeout=30)
        assert r.status_code == 200, r.text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"on http://127.0.0.1:{port}" in out
    log = read_segments(canary_project.state_dir / "predictions")
    assert {f"cli-{s}-{p}" for s in range(3) for p in range(4)} <= set(log["request_id"])

    result = CliRunner().invoke(
        app,
        ["features", "skew", "--project", str(canary_project.root), "--source", "log", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert '"source": "prediction log"' in result.stdout
