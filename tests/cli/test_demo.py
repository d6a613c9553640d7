"""``driftloop demo``: the main job runs end to end and owns only its own folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from driftloop.cli.main import app

runner = CliRunner()


def test_demo_runs_end_to_end_and_replaces_only_its_own_folder(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--project", str(folder), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["skew"]["passed"] is True and report["skew"]["rows"] == 120
    assert report["skew"]["source"] == "prediction log"
    served = report["served"]
    assert served["predictions"] == served["feedback"] == served["logged_rows"] == 120
    assert served["versions"] == ["2"]
    assert report["training_complete_share"] == 1.0
    assert report["first"]["version"] == "1" and report["first"]["alias"] == "champion"
    assert report["second"]["gate"]["champion_version"] == "1"
    shift = report["shift"]
    assert shift["affected_after"] != shift["affected_before"]

    # A second run, as a user would start it: a new process.
    again = subprocess.run(
        [sys.executable, "-m", "driftloop", "demo", "--project", str(folder), "--json"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["replaced_previous"] is True


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    result = runner.invoke(app, ["demo", "--project", str(tmp_path)])
    assert result.exit_code == 2
    assert "is not an earlier demo" in result.stderr
    assert (tmp_path / "mine.txt").read_text() == "keep me"
