"""``driftloop loop run`` against a real server: one check recorded; bad input exits 2."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from driftloop.cli.main import app

runner = CliRunner()
TOKEN = "loop-cli-test-token-0123456789"


def test_loop_run_once_checks_and_records(
    project_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from driftloop.pipeline.train import run_training
    from driftloop.registry import open_registry
    from driftloop.serving.server import BackgroundServer, build_context

    registry = open_registry(project_copy)
    run_training(project_copy, registry, actor="tests")
    monkeypatch.setenv("DRIFTLOOP_ADMIN_TOKEN", TOKEN)
    with BackgroundServer(build_context(project_copy, registry=registry)) as server:
        result = runner.invoke(
            app,
            ["loop", "run", "--once", "--project", str(project_copy.root), "--server", server.url],
        )
    assert result.exit_code == 0, result.output
    assert "checks every 24 h" in result.stdout
    # Nothing served yet: the champion has no window to judge, so nothing is done.
    assert "none: no champion served in the window" in result.stdout
    listed = runner.invoke(
        app, ["events", "--checks", "--json", "--project", str(project_copy.root)]
    )
    checks = [e for e in json.loads(listed.stdout) if e["kind"] == "check"]
    assert len(checks) == 1 and checks[0]["evidence"]["action"] == "none"


def test_loop_run_refuses_bad_until_no_token_and_an_unreachable_server(
    project_copy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = runner.invoke(
        app, ["loop", "run", "--until", "next tuesday", "--project", str(project_copy.root)]
    )
    assert bad.exit_code == 2 and "--until 'next tuesday' is not a time" in bad.stderr
    args = [
        "loop",
        "run",
        "--once",
        "--project",
        str(project_copy.root),
        "--server",
        "http://127.0.0.1:9",
    ]
    monkeypatch.delenv("DRIFTLOOP_ADMIN_TOKEN", raising=False)
    no_token = runner.invoke(app, args)
    assert no_token.exit_code == 2 and "DRIFTLOOP_ADMIN_TOKEN" in no_token.stderr
    monkeypatch.setenv("DRIFTLOOP_ADMIN_TOKEN", TOKEN)
    down = runner.invoke(app, args)
    assert down.exit_code == 2, down.output
    assert "127.0.0.1:9" in down.stderr
