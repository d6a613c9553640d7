"""A classifier's holdout needs both classes: a one-class holdout makes the retrain wait
with a reason (exit 2 from `driftloop train`), never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.features.store import FeatureStore
from driftloop.project import Project
from driftloop.registry import open_registry

runner = CliRunner()


def _daily_binary_table(path: Path) -> None:
    """12 entities a day for 120 days; no positive in the last 30 days."""
    rng = np.random.default_rng(5)
    days = pd.date_range("2024-01-01", periods=120, freq="D")
    rows = []
    for e in range(12):
        x = rng.normal(size=days.size)
        y = (x + rng.normal(0, 1, days.size) > 0.5).astype(int)
        y[-30:] = 0
        rows += [
            (f"e{e}", d.strftime("%Y-%m-%d"), float(v), int(t))
            for d, v, t in zip(days, x, y, strict=True)
        ]
    pd.DataFrame(rows, columns=["id", "day", "x", "churn"]).to_csv(path, index=False)


def test_a_one_class_holdout_makes_train_wait_with_a_reason(tmp_path: Path) -> None:
    source = tmp_path / "table.csv"
    _daily_binary_table(source)
    root = tmp_path / "proj"
    made = runner.invoke(
        app,
        [
            "init",
            str(root),
            "--data",
            str(source),
            "--entity",
            "id",
            "--timestamp",
            "day",
            "--target",
            "churn",
        ],
    )
    assert made.exit_code == 0, made.output
    project = Project.load(root)
    FeatureStore(project).apply()
    result = runner.invoke(app, ["train", "--project", str(root)])
    assert result.exit_code == 2, result.output
    assert "all negative: ROC AUC and log loss need both classes" in result.output
    assert "the retrain waits" in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert open_registry(project).versions() == []
