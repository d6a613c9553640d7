"""``driftloop demo`` owns only its own folder (the run itself: tests/loop/test_loop_run.py)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from driftloop.app.demo import DEMO_MARKER, _fresh_project
from driftloop.cli.main import app

runner = CliRunner()


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    result = runner.invoke(app, ["demo", "--project", str(tmp_path)])
    assert result.exit_code == 2
    assert "is not an earlier demo" in result.stderr
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_demo_replaces_an_earlier_demo_even_one_that_failed_midway(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    project, replaced = _fresh_project(
        folder, 1, True, {"days": 700, "n_stores": 2, "n_products": 2}, None
    )
    assert not replaced and (project.state_dir / DEMO_MARKER).is_file()
    assert project.config.rollout.min_requests == 30  # scaled to the demo's traffic
    (project.state_dir / "half-done").write_text("a run that stopped here")
    again, replaced = _fresh_project(
        folder, 1, False, {"days": 700, "n_stores": 2, "n_products": 2}, None
    )
    assert replaced and not (again.state_dir / "half-done").exists()
    assert again.config.scenario.shift.enabled is False
