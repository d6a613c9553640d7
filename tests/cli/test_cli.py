"""The command line as a user meets it: exit codes, messages, nothing half-written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.features.layout import project_layout

runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_help_does_not_import_heavy_libraries() -> None:
    code = (
        "import sys; from driftloop.cli.main import app; "
        "heavy = [m for m in ('feast', 'pandas', 'mlflow') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version_flag() -> None:
    result = run("--version")
    assert result.exit_code == 0 and result.stdout.startswith("driftloop ")


def test_init_creates_a_project_and_reports_it(tmp_path: Path) -> None:
    result = run("init", str(tmp_path / "new"), "--stores", "2", "--products", "2", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["stores"] == 2 and summary["shift_date"] == "2020-03-16"
    assert (tmp_path / "new" / "driftloop.yaml").is_file()
    assert (tmp_path / "new" / "data" / "raw" / "sales.parquet").is_file()


def test_init_refuses_a_non_empty_folder_and_leaves_it_alone(tmp_path: Path) -> None:
    target = tmp_path / "busy"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    result = run("init", str(target))
    assert result.exit_code == 2
    assert "already exists and is not an empty folder" in result.stderr
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def test_init_with_bad_option_leaves_nothing_behind(tmp_path: Path) -> None:
    result = run("init", str(tmp_path / "bad"), "--stores", "0")
    assert result.exit_code == 2
    assert "n_stores" in result.stderr and "greater than or equal to 1" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_init_unknown_scenario_lists_the_choices(tmp_path: Path) -> None:
    result = run("init", str(tmp_path / "x"), "--scenario", "bakery")
    assert result.exit_code == 2
    assert "unknown scenario 'bakery': choose one of retail" in result.stderr


def edit_config(project: Path, change: dict[str, Any]) -> None:
    path = project / "driftloop.yaml"
    data = yaml.safe_load(path.read_text())
    for dotted, value in change.items():
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(data))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"features.lag_days": [1]}, "features.lag_days: unknown key"),
        ({"labels.delay_days": "two"}, "labels.delay_days: Input should be a valid integer"),
    ],
)
def test_bad_config_gives_one_message_and_exit_2(
    project_copy: Any, change: dict[str, Any], message: str
) -> None:
    edit_config(project_copy.root, change)
    result = run("features", "apply", "--project", str(project_copy.root))
    assert result.exit_code == 2
    assert message in result.stderr
    assert "driftloop.yaml" in result.stderr
    assert "Traceback" not in result.output


def test_missing_data_file_is_named_and_nothing_is_rewritten(project_copy: Any) -> None:
    offline = project_layout(project_copy).offline_path
    before = offline.read_bytes()
    project_layout(project_copy).raw_events_path.unlink()
    result = run("features", "apply", "--project", str(project_copy.root))
    assert result.exit_code == 2
    assert "raw sales file" in result.stderr and "sales.parquet is missing" in result.stderr
    assert offline.read_bytes() == before


def test_dataset_for_an_entity_with_no_rows(applied_project: Any) -> None:
    result = run(
        "features",
        "dataset",
        "--project",
        str(applied_project.root),
        "--start",
        "2019-03-01",
        "--end",
        "2019-03-10",
        "--store",
        "42",
        "--product",
        "1",
    )
    assert result.exit_code == 2
    assert "store_id=42, product_id=1 has no rows" in result.stderr


def test_dataset_for_a_range_with_no_data(applied_project: Any) -> None:
    result = run(
        "features",
        "dataset",
        "--project",
        str(applied_project.root),
        "--start",
        "2031-01-01",
        "--end",
        "2031-01-31",
    )
    assert result.exit_code == 2
    assert "no events between 2031-01-01 and 2031-01-31" in result.stderr


def test_dataset_with_a_malformed_date(applied_project: Any) -> None:
    result = run(
        "features",
        "dataset",
        "--project",
        str(applied_project.root),
        "--start",
        "March",
        "--end",
        "2019-03-10",
    )
    assert result.exit_code == 2
    assert "--start 'March' is not a date: write it as YYYY-MM-DD" in result.stderr


def test_dataset_writes_parquet(applied_project: Any, tmp_path: Path) -> None:
    import pandas as pd

    out = tmp_path / "train.parquet"
    result = run(
        "features",
        "dataset",
        "--project",
        str(applied_project.root),
        "--start",
        "2019-03-01",
        "--end",
        "2019-03-10",
        "--out",
        str(out),
        "--json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 120
    assert len(pd.read_parquet(out)) == 120


def test_materialize_outside_the_data_is_refused(applied_project: Any) -> None:
    result = run(
        "features", "materialize", "--project", str(applied_project.root), "--until", "2025-01-01"
    )
    assert result.exit_code == 2
    assert "--until 2025-01-01 is outside the data" in result.stderr


def test_skew_clean_project_exits_0(applied_project: Any) -> None:
    result = run("features", "skew", "--project", str(applied_project.root), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] is True and report["rows"] == 12


def test_skew_exits_1_on_a_different_online_transformation(project_copy: Any) -> None:
    from driftloop.features.store import FeatureStore

    store = FeatureStore(project_copy)
    rows = store.compute()
    rows = rows[rows["event_timestamp"] == rows["event_timestamp"].max()].copy()
    rows["price_change_7d"] = rows["price_change_7d"].fillna(0.0) + 0.01
    store.write_online(rows)
    result = run("features", "skew", "--project", str(project_copy.root))
    assert result.exit_code == 1
    assert "price_change_7d" in result.stdout
    assert "skew detected" in result.stdout
    assert "exceeds features.skew.max_mismatch_rate" in result.stderr


def test_commands_outside_a_project_say_how_to_start(tmp_path: Path) -> None:
    result = run("features", "apply", "--project", str(tmp_path))
    assert result.exit_code == 2
    assert "driftloop init" in result.stderr
