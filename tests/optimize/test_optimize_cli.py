"""``driftloop optimize`` on an MLP project: table, gate, registration with lineage."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.optimize.data import load_version_data
from driftloop.pipeline.metrics import regression_metrics
from driftloop.registry import open_registry

runner = CliRunner()
ROWS = ["fp32", "fused", "int8-dynamic", "int8-static", "pruned", "distilled"]


def run(project: Any, *args: str) -> Any:
    return runner.invoke(app, [*args, "--project", str(project.root)], catch_exceptions=False)


def versions(project: Any) -> list[str]:
    return [v.version for v in open_registry(project).versions()]


@pytest.fixture(scope="module")
def optimized(mlp_project: Any) -> tuple[Any, dict[str, Any], list[str]]:
    """``driftloop optimize 1 --json`` run once: (project, its JSON, versions before)."""
    before = versions(mlp_project)
    result = run(mlp_project, "optimize", "1", "--json")
    assert result.exit_code == 0, result.output
    return mlp_project, json.loads(result.stdout), before


def test_json_has_one_row_per_technique_with_measurements(optimized: Any) -> None:
    _, doc, _ = optimized
    rows = {r["technique"]: r for r in doc["variants"]}
    assert list(rows) == ROWS
    assert doc["version"] == "1" and doc["model_kind"] == "sklearn" and doc["metric"] == "wape"
    assert doc["data_matches_parent"] is True
    for name, row in rows.items():
        assert row["applicable"], (name, row["detail"])
        assert set(row["latency_ms"]) == {"batch_1", "batch_1000"}  # measured, not asserted
        assert {"p50_ms", "p99_ms", "runs"} <= set(row["latency_ms"]["batch_1"])
        assert row["size_bytes"] > 0 and "wape" in row["metrics"]
    assert rows["fp32"]["size_ratio"] == 1.0 and rows["fp32"]["verdict"] == "baseline"


def test_fp32_onnx_export_matches_the_native_mlp(optimized: Any) -> None:
    _, doc, _ = optimized
    assert doc["native_max_abs_diff"] < 1e-3


def test_int8_weights_make_the_mlp_about_four_times_smaller(optimized: Any) -> None:
    _, doc, _ = optimized
    rows = {r["technique"]: r for r in doc["variants"]}
    for name in ("int8-dynamic", "int8-static"):
        assert rows[name]["size_ratio"] > 3.5, rows[name]
        assert "INT8 weights of 3 MatMul" in rows[name]["detail"]
    assert rows["pruned"]["detail"].startswith("hidden units (256, 256) -> (128, 128)")
    assert rows["distilled"]["detail"].startswith("student MLP (64, 64)")


def test_smallest_kept_variant_is_registered_with_parent_lineage(optimized: Any) -> None:
    project, doc, before = optimized
    rows = {r["technique"]: r for r in doc["variants"]}
    kept = [r for r in doc["variants"] if r["kept"]]
    assert kept and doc["chosen"] == min(kept, key=lambda r: r["size_bytes"])["technique"]
    new = doc["registered_version"]
    assert versions(project) == [*before, new]
    registry = open_registry(project)
    mv = registry.get(new)
    assert mv.parent == "1" and mv.tags["driftloop.optimization"] == doc["chosen"]
    assert mv.tags["driftloop.data_digest"] == registry.get("1").tags["driftloop.data_digest"]
    assert mv.aliases == () and mv.gate == "passed"
    assert mv.metrics["size_ratio"] == pytest.approx(rows[doc["chosen"]]["size_ratio"])


def test_registered_variant_loads_and_predicts_through_the_serving_path(optimized: Any) -> None:
    project, doc, _ = optimized
    registry = open_registry(project)
    model = registry.load_model(doc["registered_version"])
    assert model.format == "onnx"
    data = load_version_data(project, registry.get("1"))
    pred = model.predict(data.holdout)
    chosen = next(r for r in doc["variants"] if r["technique"] == doc["chosen"])
    wape = regression_metrics(data.y("holdout"), pred).wape
    assert wape == pytest.approx(chosen["metrics"]["wape"], rel=1e-9)
    assert np.isfinite(pred).all()


def test_table_is_printed_for_people(mlp_project: Any) -> None:
    before = versions(mlp_project)
    result = run(mlp_project, "optimize", "1", "--register", "none")
    assert result.exit_code == 0, result.output
    for name in ROWS:
        assert name in result.stdout
    assert "--register none: nothing registered" in result.stdout
    assert versions(mlp_project) == before


def test_variant_beyond_tolerance_is_not_registered(
    mlp_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRIFTLOOP__OPTIMIZE__MAX_DISAGREEMENT", "0")
    before = versions(mlp_project)
    result = run(mlp_project, "optimize", "1", "--register", "int8-dynamic", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    row = next(r for r in doc["variants"] if r["technique"] == "int8-dynamic")
    assert not row["kept"] and "allowed <= 0.00%" in row["verdict"]
    assert doc["registered_version"] is None
    assert "int8-dynamic was rejected" in result.stderr and "nothing registered" in result.stderr
    assert versions(mlp_project) == before


def test_unknown_version_exits_2_and_registers_nothing(mlp_project: Any) -> None:
    before = versions(mlp_project)
    result = run(mlp_project, "optimize", "9")
    assert result.exit_code == 2
    assert "has no version 9: `driftloop models list` shows the versions" in result.stderr
    assert versions(mlp_project) == before


def test_unknown_register_choice_exits_2(mlp_project: Any) -> None:
    result = run(mlp_project, "optimize", "1", "--register", "int4")
    assert result.exit_code == 2
    assert "--register 'int4': choose one of best, none, fused" in result.stderr


def test_onnx_only_variant_cannot_be_optimized_again(optimized: Any) -> None:
    project, doc, _ = optimized
    before = versions(project)
    result = run(project, "optimize", doc["registered_version"])
    assert result.exit_code == 2
    assert "is an ONNX-only optimized variant of v1" in result.stderr
    assert "use its parent v1 instead" in result.stderr
    assert versions(project) == before


def test_model_without_onnx_converter_exits_2(unexportable_project: Any) -> None:
    before = versions(unexportable_project)
    result = run(unexportable_project, "optimize", "1")
    assert result.exit_code == 2
    assert "(sklearn Pipeline) cannot be exported to ONNX" in result.stderr
    assert "KernelRidge" in result.stderr
    assert versions(unexportable_project) == before
