"""Optimization of a LightGBM version, and data problems found before anything is written."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from tests.conftest import copy_project

from driftloop.errors import DataError
from driftloop.features.layout import project_layout
from driftloop.optimize import run_optimization
from driftloop.pipeline.train import run_training
from driftloop.registry import open_registry


@pytest.fixture(scope="module")
def lightgbm_result(trained_project: Any) -> Any:
    return run_optimization(trained_project, open_registry(trained_project), "1", register="none")


def test_tree_model_reports_int8_as_not_applicable_with_the_reason(lightgbm_result: Any) -> None:
    rows = {r.technique: r for r in lightgbm_result.variants}
    for name in ("int8-dynamic", "int8-static"):
        row = rows[name]
        assert not row.applicable and row.size_bytes is None and row.verdict == "not applicable"
        assert "this graph has none (" in row.detail and "TreeEnsembleRegressor)" in row.detail
        assert "quantize_dynamic output measured" in row.detail
    assert not rows["fused"].applicable and "nothing to fuse" in rows["fused"].detail


def test_tree_model_is_pruned_by_trees_and_distilled_to_fewer_leaves(lightgbm_result: Any) -> None:
    rows = {r.technique: r for r in lightgbm_result.variants}
    assert lightgbm_result.model_kind == "lightgbm"
    assert lightgbm_result.native_max_abs_diff < 1e-3
    assert rows["pruned"].applicable and rows["pruned"].detail.startswith("trees ")
    assert rows["pruned"].size_ratio is not None and rows["pruned"].size_ratio > 1.5
    assert rows["distilled"].applicable and "student LightGBM" in rows["distilled"].detail
    assert lightgbm_result.chosen is None and lightgbm_result.registered_version is None


def test_missing_calibration_data_is_one_message_and_registers_nothing(
    applied_project: Any, tmp_path: Any
) -> None:
    project = copy_project(applied_project, tmp_path / "shop")
    registry = open_registry(project)
    trained = run_training(project, registry, actor="tests")
    sales = pd.read_parquet(project_layout(project).raw_events_path)
    keep = pd.to_datetime(sales["date"]).dt.date >= trained.split.validation_start
    sales[keep].to_parquet(project_layout(project).raw_events_path, index=False)
    with pytest.raises(DataError, match=r"no calibration data: the feature store has 0 rows"):
        run_optimization(project, registry, "1")
    assert [v.version for v in registry.versions()] == ["1"]


def test_table_has_a_cell_per_column_for_not_applicable_rows(lightgbm_result: Any) -> None:
    from driftloop.cli.optimize import _table

    table = _table(lightgbm_result)
    assert all(len(list(c.cells)) == len(lightgbm_result.variants) for c in table.columns)
    verdict = table.columns[-1]
    assert verdict.header == "verdict" and "[dim]not applicable[/]" in list(verdict.cells)
