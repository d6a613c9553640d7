"""``driftloop init``: a new project folder with config and generated raw data."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from driftloop.config import (
    CONFIG_FILENAME,
    ProjectConfig,
    RetailScenarioConfig,
    dump_config,
    format_validation_error,
)
from driftloop.errors import ConfigError, ProjectError, UsageError
from driftloop.project import Project, atomic_write_parquet, staged_directory
from driftloop.scenarios.retail import generate_retail

__all__ = ["SCENARIOS", "create_project"]

SCENARIOS = ("retail",)


def _project_name(folder: Path) -> str:
    name = re.sub(r"[^a-z0-9_]+", "_", folder.name.lower()).strip("_")
    if not name or not name[0].isalpha():
        name = f"project_{name}".rstrip("_")
    return name[:63]


def create_project(
    target: Path,
    scenario: str = "retail",
    seed: int = 1,
    overrides: Mapping[str, Any] | None = None,
) -> Project:
    """Create a project in ``target`` (absent or empty); nothing is left on failure.

    ``overrides`` sets scenario keys (``n_stores``, ``days``, ``shift`` ...).
    """
    if scenario not in SCENARIOS:
        raise UsageError(f"unknown scenario {scenario!r}: choose one of {', '.join(SCENARIOS)}")
    if seed < 0:
        raise UsageError(f"--seed must be a whole number >= 0, got {seed}")
    target = target.expanduser().resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ProjectError(
            f"{target} already exists and is not an empty folder: choose a new path, "
            "or remove it first (driftloop never overwrites a project)"
        )
    try:
        scenario_cfg = RetailScenarioConfig.model_validate({**(overrides or {}), "seed": seed})
        config = ProjectConfig(project=_project_name(target), scenario=scenario_cfg)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(Path("scenario options"), exc)) from exc
    with staged_directory(target) as staging:
        (staging / CONFIG_FILENAME).write_text(
            "# driftloop project configuration; every key is shown with its value.\n"
            + dump_config(config),
            encoding="utf-8",
        )
        staged = Project(root=staging, config=config)
        data = generate_retail(config.scenario)
        atomic_write_parquet(data.sales, staged.raw_sales_path)
        truth = {
            "shift_date": config.scenario.shift.date.isoformat(),
            "shift_enabled": config.scenario.shift.enabled,
            "affected_stores": list(data.affected_stores),
            "affected_products": list(data.affected_products),
            "gaining_products": list(data.gaining_products),
        }
        staged.scenario_truth_path.write_text(json.dumps(truth, indent=2), encoding="utf-8")
        staged.state_dir.mkdir()
    return Project.load(target)
