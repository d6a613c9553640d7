"""Model registry: versions with lineage, aliases with history, artifacts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from driftloop.registry.base import (
    ALIASES,
    CHALLENGER,
    CHAMPION,
    LoadedModel,
    ModelRegistry,
    ModelVersion,
    RegistrationRequest,
)
from driftloop.registry.history import AliasHistory, AliasMove

if TYPE_CHECKING:
    from driftloop.clock import Clock
    from driftloop.project import Project
    from driftloop.registry.mlflow_registry import MlflowRegistry

__all__ = [
    "ALIASES",
    "CHALLENGER",
    "CHAMPION",
    "AliasHistory",
    "AliasMove",
    "LoadedModel",
    "ModelRegistry",
    "ModelVersion",
    "RegistrationRequest",
    "open_registry",
]


def open_registry(project: Project, clock: Clock | None = None) -> MlflowRegistry:
    """The project's registry as its config describes it (default: under .driftloop/)."""
    from driftloop.registry.integrity import LoadPolicy
    from driftloop.registry.mlflow_registry import MlflowRegistry
    from driftloop.registry.relocate import relocate_local_registry

    cfg = project.config.registry
    state = project.state_dir
    state.mkdir(parents=True, exist_ok=True)
    root = cfg.artifact_location or (state / "mlartifacts").as_uri()
    if cfg.tracking_uri is None and cfg.artifact_location is None:
        relocate_local_registry(state / "mlflow.db", root)  # a moved or copied project
    return MlflowRegistry(
        tracking_uri=cfg.tracking_uri or f"sqlite:///{state / 'mlflow.db'}",
        artifact_location=root,
        model_name=project.model_name,
        experiment=cfg.experiment or project.config.project,
        history=AliasHistory(state / "state.db"),
        clock=clock,
        timeout_s=cfg.request_timeout_s,
        policy=LoadPolicy(cfg.allow_pickle, cfg.allow_unverified, cfg.skops_trusted_types),
    )
