"""What a newcomer meets first: pointers that lead somewhere, commands that can be pasted."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from driftloop.cli.common import installed_commands
from driftloop.cli.main import app


def test_report_without_a_timeline_points_to_the_commands_that_write_one(tmp_path: Path) -> None:
    (tmp_path / "driftloop.yaml").write_text(yaml.safe_dump({"project": "shop"}))
    result = CliRunner().invoke(app, ["report", "--project", str(tmp_path)])
    assert result.exit_code != 0
    text = " ".join(result.stderr.split())
    assert "`driftloop replay`" in text and "`driftloop demo` writes it" in text
    assert "loop run` acts on live traffic" in text


def test_events_kind_lists_the_valid_kinds_and_the_closest(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["events", "--project", str(tmp_path), "--kind", "promotd"])
    assert result.exit_code == 2
    text = " ".join(result.stderr.split())
    assert "promotd (did you mean promoted?)" in text and "the kinds are: check," in text


def test_next_commands_name_the_venv_when_path_does_not_find_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    here = Path(sys.executable).parent / "driftloop"
    assert here.is_file()
    monkeypatch.setenv("PATH", "/nonexistent")
    assert installed_commands(("driftloop",)) == (str(here),)
    monkeypatch.setenv("PATH", str(here.parent))
    assert installed_commands(("driftloop",)) == ("driftloop",)


def test_without_a_terminal_progress_is_plain_lines_with_a_heartbeat() -> None:
    import io

    from rich.console import Console

    from driftloop.cli.common import PlainProgress

    out = io.StringIO()
    progress = PlainProgress(2, every_s=3600.0, out=Console(file=out, width=200))
    with progress:
        progress.step("build training set")
        progress.heartbeat()  # what the background thread prints every every_s seconds
        progress.step("train model")
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[1/2] build training set (")
    assert any("build training set: still running" in line for line in lines)
    assert any(line.startswith("[2/2] train model (") for line in lines)
    assert lines[-1].startswith("[2/2] done (")
