"""Retail projects trained with an MLP and with a model ONNX cannot express."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from tests.conftest import copy_project

from driftloop.pipeline.train import run_training
from driftloop.project import Project
from driftloop.registry import open_registry

MLP_MODEL: dict[str, Any] = {
    "type": "sklearn",
    "estimator": "sklearn.neural_network.MLPRegressor",
    "params": {
        "hidden_layer_sizes": [256, 256],
        "early_stopping": True,
        "learning_rate_init": 0.0003,
        "batch_size": 256,
    },
    "scale_features": True,
}


def trained_with(applied: Any, folder: Any, model: dict[str, Any]) -> Any:
    """A copy of the applied project with ``model`` configured and version 1 trained."""
    project = copy_project(applied, folder / "shop")
    data = yaml.safe_load(project.config_path.read_text())
    data["training"]["model"] = model
    data["optimize"] = {"latency_repeats": 5}  # measured, never asserted: keep it short
    project.config_path.write_text(yaml.safe_dump(data))
    project = Project.load(project.root)
    run_training(project, open_registry(project), actor="tests")
    return project


@pytest.fixture(scope="session")
def mlp_project(applied_project: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Version 1 is an MLP (256, 256) behind an imputer and a scaler.

    Tests may register optimized versions here; they compare version lists before and after.
    """
    return trained_with(applied_project, tmp_path_factory.mktemp("mlp"), MLP_MODEL)


@pytest.fixture(scope="session")
def unexportable_project(applied_project: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Version 1 is a KernelRidge, which skl2onnx has no converter for."""
    model = {
        "type": "sklearn",
        "estimator": "sklearn.kernel_ridge.KernelRidge",
        "scale_features": True,
    }
    return trained_with(applied_project, tmp_path_factory.mktemp("kr"), model)
