"""The registry boundary: what the pipeline, server and controller ask of it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from driftloop.registry.history import AliasMove
from driftloop.statistics.profile import ReferenceProfile

__all__ = [
    "ALIASES",
    "CHALLENGER",
    "CHAMPION",
    "LoadedModel",
    "ModelRegistry",
    "ModelVersion",
    "RegistrationRequest",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
ALIASES = (CHAMPION, CHALLENGER)


class LoadedModel(Protocol):
    """A model ready to predict, as the registry hands it out."""

    feature_names: tuple[str, ...]
    format: str

    def predict(self, frame: pd.DataFrame) -> np.ndarray: ...

    def predict_array(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ModelVersion:
    """One registered version with its aliases, verdict, metrics and lineage."""

    name: str
    version: str
    created_at: datetime
    aliases: tuple[str, ...]
    gate: str  # "passed" | "rejected"
    metrics: Mapping[str, float]
    tags: Mapping[str, str]
    run_id: str
    source: str

    @property
    def parent(self) -> str | None:
        return self.tags.get("driftloop.parent_version") or None


@dataclass
class RegistrationRequest:
    """Everything a new version is made of; the registry stores it in one go."""

    model_kind: str  # "lightgbm" | "sklearn" | "onnx" (then ``model`` is the ONNX bytes)
    model: Any
    task: str
    feature_names: tuple[str, ...]
    params: Mapping[str, Any]
    metrics: Mapping[str, float]
    tags: Mapping[str, str]
    profile: ReferenceProfile
    gate: Mapping[str, Any]
    gate_passed: bool
    onnx_model: bytes | None
    pip_requirements: list[str]
    run_name: str
    artifacts: Mapping[str, str] = field(default_factory=dict)  # extra text files


class ModelRegistry(Protocol):
    """Versions, aliases with history, and the artifacts of each version."""

    model_name: str

    def check_reachable(self) -> None: ...

    def register(self, request: RegistrationRequest) -> ModelVersion: ...

    def versions(self) -> list[ModelVersion]: ...

    def get(self, version: str) -> ModelVersion: ...

    def alias(self, alias: str) -> ModelVersion | None: ...

    def move_alias(
        self, alias: str, version: str | None, kind: str, actor: str, reason: str
    ) -> AliasMove: ...

    def alias_history(self, alias: str | None = None) -> list[AliasMove]: ...

    def load_model(self, version: str) -> LoadedModel: ...

    def load_profile(self, version: str) -> ReferenceProfile: ...
