"""The training pipeline end to end on a real MLflow registry (SQLite, local artifacts)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftloop.errors import ConfigError, DataError, ModelLoadError
from driftloop.features.store import FeatureStore
from driftloop.features.training_set import build_training_set
from driftloop.pipeline.train import run_training
from driftloop.registry import CHAMPION, open_registry
from driftloop.statistics.profile import build_profile

LINEAGE_TAGS = (
    "driftloop.as_of",
    "driftloop.window_start",
    "driftloop.window_end",
    "driftloop.split",
    "driftloop.data_digest",
    "driftloop.feature_service",
    "driftloop.feature_views",
    "driftloop.feature_registry_digest",
    "driftloop.version",
    "driftloop.git_commit",
    "driftloop.project_git_commit",
    "driftloop.parent_version",
    "driftloop.gate",
    "driftloop.gate_summary",
    "driftloop.model_kind",
    "driftloop.task",
    "driftloop.features",
    "driftloop.onnx",
    "driftloop.onnx_sha256",
    "driftloop.actor",
    "driftloop.label_delay_days",
)


def test_first_version_becomes_champion_with_complete_lineage(trained_project: Any) -> None:
    registry = open_registry(trained_project)
    (v1,) = registry.versions()
    assert v1.version == "1" and v1.aliases == (CHAMPION,) and v1.gate == "passed"
    missing = [t for t in LINEAGE_TAGS if t not in v1.tags]
    assert missing == []
    assert v1.tags["driftloop.parent_version"] == ""
    assert len(v1.tags["driftloop.data_digest"]) == 64
    assert v1.tags["driftloop.feature_views"] == "sales_history,pricing,calendar"
    assert v1.metrics["holdout_wape"] < 0.6
    assert {m.kind for m in registry.alias_history()} == {"train"}


def test_data_digest_is_reproducible(trained_project: Any) -> None:
    from driftloop.pipeline.lineage import frame_digest

    v1 = open_registry(trained_project).get("1")
    frame = build_training_set(
        FeatureStore(trained_project),
        date.fromisoformat(v1.tags["driftloop.window_start"]),
        date.fromisoformat(v1.tags["driftloop.window_end"]),
    )
    assert frame_digest(frame) == v1.tags["driftloop.data_digest"]


def test_reference_profile_comes_back_identical(trained_project: Any) -> None:
    registry = open_registry(trained_project)
    profile = registry.load_profile("1")
    store = FeatureStore(trained_project)
    import json

    split = json.loads(registry.get("1").tags["driftloop.split"])
    valid = build_training_set(
        store,
        date.fromisoformat(split["validation_start"]),
        date.fromisoformat(split["validation_end"]),
    )
    # features over the whole training window (train and validation), predictions on
    # the validation days
    window = build_training_set(
        store,
        date.fromisoformat(split["train_start"]),
        date.fromisoformat(split["validation_end"]),
    )
    model = registry.load_model("1")
    rebuilt = build_profile(
        {n: window[n].to_numpy("float64") for n in store.layout.all_features},
        model.predict(valid),
        profile.bins,
    )
    assert list(profile.features) == list(store.layout.all_features)
    for name, column in profile.features.items():
        assert rebuilt.features[name].edges == column.edges
        assert rebuilt.features[name].counts == column.counts
    assert np.allclose(rebuilt.prediction.edges, profile.prediction.edges, rtol=1e-4)
    # a week holds 84 rows here, fewer than monitoring.min_rows (500): no window would be
    # judged, none calibrates, the fixed levels stay
    assert all(c.calibration is None for c in profile.features.values())


def test_features_are_calibrated_on_windows_of_the_monitoring_size(project_copy: Any) -> None:
    from driftloop.project import Project

    config = project_copy.config
    monitoring = config.monitoring.model_copy(update={"min_rows": 50})
    project = Project(project_copy.root, config.model_copy(update={"monitoring": monitoring}))
    registry = open_registry(project)
    result = run_training(project, registry, date(2019, 5, 1))
    profile = registry.load_profile(result.version)
    split = result.split
    weeks = ((split.validation_end - split.train_start).days + 1) // 7
    for column in profile.features.values():
        assert column.calibration is not None
        assert column.calibration.window_days == 7
        # full weeks with at least min_rows values (history features start later)
        assert 4 <= column.calibration.chunks <= weeks
        assert column.calibration.psi_mean >= 0 and column.calibration.psi_sd >= 0


def test_no_model_artifact_is_a_pickle(trained_project: Any) -> None:
    artifacts = trained_project.state_dir / "mlartifacts"
    files = [p for p in artifacts.rglob("*") if p.is_file()]
    assert any(p.name == "model.lgb" for p in files)
    assert any(p.name == "model.onnx" for p in files)
    for path in files:
        assert path.suffix not in (".pkl", ".pickle", ".joblib"), path
        assert path.read_bytes()[:1] != b"\x80", f"{path} starts like a pickle"


def test_loaded_model_is_the_onnx_copy_and_matches_native(
    trained_project: Any, tmp_path: Path
) -> None:
    import mlflow.lightgbm

    registry = open_registry(trained_project)
    onnx_model = registry.load_model("1")
    assert onnx_model.format == "onnx"
    # Downloaded to a folder of the test's: loaded in place from the shared project's local
    # artifact store, MLflow would write a registered_model_meta file into the version's
    # artifacts, which the registry's checksums then refuse for every later test.
    uri = f"models:/{registry.model_name}/1"
    native = mlflow.lightgbm.load_model(uri, dst_path=str(tmp_path))
    frame = build_training_set(FeatureStore(trained_project), date(2019, 7, 1), date(2019, 7, 7))
    x = frame[list(onnx_model.feature_names)].to_numpy("float32")
    np.testing.assert_allclose(onnx_model.predict(frame), native.predict(x), rtol=1e-4, atol=1e-3)


def test_tampered_onnx_artifact_is_refused(project_copy: Any) -> None:
    registry = open_registry(project_copy)
    run_training(project_copy, registry, actor="tests")
    (onnx_file,) = (project_copy.state_dir / "mlartifacts").rglob("model.onnx")
    onnx_file.write_bytes(onnx_file.read_bytes()[:-8] + b"tampered")
    with pytest.raises(ModelLoadError, match=r"version 1: artifact onnx/model.onnx has checksum"):
        registry.load_model("1")


def shuffle_history(frame: pd.DataFrame) -> pd.DataFrame:
    """A broken training pipeline: every sales-history feature shuffled across rows."""
    rng = np.random.default_rng(0)
    out = frame.copy()
    for col in [c for c in out.columns if c.startswith("units_")]:
        out[col] = rng.permutation(out[col].to_numpy())
    return out


def test_worse_candidate_fails_the_gate_and_moves_no_alias(project_copy: Any) -> None:
    registry = open_registry(project_copy)
    first = run_training(project_copy, registry, actor="tests")
    worse = run_training(project_copy, registry, actor="tests", frame_hook=shuffle_history)
    assert first.gate.passed and not worse.gate.passed
    assert "vs_champion" in worse.gate.failed_checks
    assert worse.alias is None
    v2 = registry.get(worse.version)
    assert v2.gate == "rejected" and v2.aliases == ()
    assert v2.tags["driftloop.parent_version"] == first.version
    assert v2.tags["driftloop.frame_hook"] == "shuffle_history"
    assert registry.alias(CHAMPION).version == first.version  # type: ignore[union-attr]
    assert len(registry.alias_history()) == 1
    assert registry.artifact_text(worse.version, "gate.json")["passed"] is False


def test_second_candidate_is_gated_against_the_first_on_the_same_holdout(
    project_copy: Any,
) -> None:
    registry = open_registry(project_copy)
    run_training(project_copy, registry, actor="tests")
    second = run_training(project_copy, registry, actor="tests", on_pass="challenger")
    assert second.champion_metrics is not None
    # Same data, same seed: the same model, so the same holdout score.
    assert second.champion_metrics["wape"] == pytest.approx(second.metrics["wape"], rel=1e-6)
    assert second.alias == "challenger"
    assert registry.alias("challenger").version == "2"  # type: ignore[union-attr]


def registry_versions(project: Any) -> int:
    return len(open_registry(project).versions())


def test_window_with_no_data_leaves_the_registry_unchanged(project_copy: Any) -> None:
    registry = open_registry(project_copy)
    with pytest.raises(DataError, match="no labels are known yet"):
        run_training(project_copy, registry, date(2018, 1, 1))
    assert registry_versions(project_copy) == 0


def test_too_few_rows_for_the_split(project_copy: Any, tmp_path: Path) -> None:
    registry = open_registry(project_copy)
    with pytest.raises(DataError, match=r"too few rows for the split: train has \d+ rows"):
        run_training(project_copy, registry, date(2019, 2, 20))
    assert registry_versions(project_copy) == 0


def test_nan_labels_are_named(project_copy: Any) -> None:
    def blank_labels(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(units=frame["units"].where(frame.index % 50 != 0))

    registry = open_registry(project_copy)
    with pytest.raises(DataError, match=r"NaN labels \(units\) in the train rows"):
        run_training(project_copy, registry, frame_hook=blank_labels)
    assert registry_versions(project_copy) == 0


def test_sklearn_estimator_is_stored_with_skops_and_reloads(project_copy: Any) -> None:
    import yaml

    from driftloop.project import Project

    path = project_copy.config_path
    data = yaml.safe_load(path.read_text())
    data["training"]["model"] = {
        "type": "sklearn",
        "estimator": "sklearn.ensemble.HistGradientBoostingRegressor",
        "params": {"max_iter": 60, "loss": "poisson"},
    }
    path.write_text(yaml.safe_dump(data))
    project = Project.load(project_copy.root)
    registry = open_registry(project)
    result = run_training(project, registry, actor="tests")
    assert result.gate.passed, result.gate.summary()
    files = {p.name for p in (project.state_dir / "mlartifacts").rglob("*") if p.is_file()}
    assert "model.skops" in files
    kind, native = registry.load_native("1")
    assert (kind, type(native).__name__) == ("sklearn", "HistGradientBoostingRegressor")
    # skops trusts the list the registry recorded, not the one inside the artifact's MLmodel
    trusted = json.loads(registry.get("1").tags["driftloop.skops_trusted_types"])
    assert trusted, "HistGradientBoostingRegressor holds types skops does not trust by default"
    registry.client().set_model_version_tag(
        registry.model_name, "1", "driftloop.skops_trusted_types", "[]"
    )
    with pytest.raises(
        ModelLoadError,
        match=r"version 1: its skops file holds types that are "
        r"not trusted: .*registry.skops_trusted_types",
    ):
        registry.load_native("1")


def test_unknown_model_class_is_a_config_error(project_copy: Any) -> None:
    import yaml

    from driftloop.project import Project

    path = project_copy.config_path
    data = yaml.safe_load(path.read_text())
    data["training"]["model"] = {"type": "sklearn", "estimator": "sklearn.ensemble.Nope"}
    path.write_text(yaml.safe_dump(data))
    project = Project.load(project_copy.root)
    with pytest.raises(ConfigError, match=r"training.model.estimator 'sklearn.ensemble.Nope'"):
        run_training(project, open_registry(project))
    assert registry_versions(project) == 0


def test_a_holdout_too_small_for_its_metric_waits_with_a_reason(project_copy: Any) -> None:
    calls: list[int] = []

    def seven_holdout_rows(frame: pd.DataFrame) -> pd.DataFrame:
        calls.append(len(frame))  # train, validation, then the holdout
        return frame.head(7) if len(calls) == 3 else frame

    registry = open_registry(project_copy)
    with pytest.raises(DataError, match=r"hold 7 rows, fewer than 10: .* the retrain waits"):
        run_training(project_copy, registry, frame_hook=seven_holdout_rows, hook_holdout=True)
    assert registry_versions(project_copy) == 0
