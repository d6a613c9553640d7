"""Typed project configuration (``driftloop.yaml``), loaded once and passed down.

Every default below is a named constant; unknown keys are refused so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from driftloop.config import sections as _sections
from driftloop.config.deploy import (
    AdminSecretConfig,
    DeployConfig,
    ResourceAmounts,
    ResourcesConfig,
)
from driftloop.config.loop import LoopConfig, Trigger
from driftloop.config.messages import EnvSources
from driftloop.config.messages import format_validation_error as _format
from driftloop.config.rollout import IstioConfig, OutcomeGateConfig, RolloutConfig, ShadowConfig
from driftloop.config.sections import *  # noqa: F403  (the sections are part of this API)
from driftloop.config.sections import (
    FeaturesConfig,
    LabelsConfig,
    MonitoringConfig,
    OptimizeConfig,
    RegistryConfig,
    RetailScenarioConfig,
    ServingConfig,
    TableConfig,
    TrainingConfig,
    _Strict,
)
from driftloop.errors import ConfigError

CONFIG_FILENAME = "driftloop.yaml"

__all__ = [
    "CONFIG_FILENAME",
    "AdminSecretConfig",
    "DeployConfig",
    "ResourceAmounts",
    "ResourcesConfig",
    "LoopConfig",
    "Trigger",
    "IstioConfig",
    "OutcomeGateConfig",
    "RolloutConfig",
    "ShadowConfig",
    "ProjectConfig",
    "dump_config",
    "format_validation_error",
    "load_config",
    *_sections.__all__,
]


class ProjectConfig(_Strict):
    """The whole of ``driftloop.yaml``."""

    project: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    scenario: RetailScenarioConfig = RetailScenarioConfig()
    data: TableConfig | None = Field(
        None, description="set for a project made from the user's own table (init --data)"
    )
    labels: LabelsConfig = LabelsConfig()
    features: FeaturesConfig = FeaturesConfig()
    training: TrainingConfig = TrainingConfig()
    registry: RegistryConfig = RegistryConfig()
    serving: ServingConfig = ServingConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    rollout: RolloutConfig = RolloutConfig()
    optimize: OptimizeConfig = OptimizeConfig()
    loop: LoopConfig = LoopConfig()
    deploy: DeployConfig = DeployConfig()

    @model_validator(mode="after")
    def _lags_known_in_time(self) -> ProjectConfig:
        if self.data is not None:  # a table project's history features live in its repo
            return self
        too_recent = [k for k in self.features.lags_days if k < self.labels.delay_days]
        if too_recent:
            raise ValueError(
                f"features.lags_days {too_recent} are shorter than labels.delay_days "
                f"{self.labels.delay_days}: those sales are not known yet when the prediction "
                "is made; use lags >= the label delay"
            )
        return self


def load_config(project_dir: Path) -> ProjectConfig:
    """Read and validate ``driftloop.yaml`` in ``project_dir``; raise ConfigError on any problem."""
    path = Path(project_dir) / CONFIG_FILENAME
    if not path.is_file():
        raise ConfigError(
            f"no {CONFIG_FILENAME} in {Path(project_dir).resolve()}: create a project with "
            "`driftloop init DIR`, or point at one with --project DIR"
        )
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {raw!r}")
    env = _apply_env_overrides(raw)
    try:
        return ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        # not chained: pydantic's own text repeats each input, secrets included
        raise ConfigError(format_validation_error(path, exc, env)) from None


def format_validation_error(path: Path, exc: ValidationError, env: EnvSources | None = None) -> str:
    """The problems of a ``ProjectConfig`` validation, each naming its key and source."""
    return _format(path, exc, env, ProjectConfig)


def _apply_env_overrides(raw: dict[str, Any]) -> dict[tuple[str, ...], str]:
    """``DRIFTLOOP__SECTION__KEY=value`` overrides a key (value parsed as YAML), in place;
    returns which environment variable set which key path."""
    prefix = "DRIFTLOOP__"
    sources: dict[tuple[str, ...], str] = {}
    for name, value in sorted(os.environ.items()):
        if not name.startswith(prefix):
            continue
        keys = [k.lower() for k in name[len(prefix) :].split("__") if k]
        if not keys:
            continue
        node = raw
        for key in keys[:-1]:
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
        try:
            node[keys[-1]] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(
                f"the environment variable {name} is not a valid YAML value: quote it, or unset it"
            ) from None
        sources[tuple(keys)] = name
    return sources


def dump_config(config: ProjectConfig) -> str:
    """Render a config as YAML, every key spelled out so users can see the defaults."""
    data = config.model_dump(mode="json")
    if config.data is not None:  # a table project: no scenario, its features in its repo
        del data["scenario"]
        for key in ("lags_days", "rolling_windows_days"):
            del data["features"][key]
    else:
        del data["data"]
    if config.serving.admin_token is not None:  # never write a secret back out
        data["serving"]["admin_token"] = None
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
