"""``driftloop init``: a new project folder with config and generated raw data.

The settings fitted to a table (gate, rollout pace, windows) are in ``fitting``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import ValidationError

from driftloop.app.fitting import is_counts, rollout_settings, table_settings, target_range
from driftloop.config import (
    CONFIG_FILENAME,
    ProjectConfig,
    RetailScenarioConfig,
    RolloutConfig,
    dump_config,
    format_validation_error,
)
from driftloop.errors import ConfigError, ProjectError, UsageError
from driftloop.features.engineering import TIMESTAMP_COLUMN
from driftloop.features.layout import project_layout
from driftloop.features.table import (
    CALENDAR_FEATURES,
    activity_feature_names,
    activity_state_names,
    check_generated_names,
    history_feature_names,
)
from driftloop.loop.simulate import ROUNDS_PER_DAY
from driftloop.project import Project, atomic_write_parquet, staged_directory
from driftloop.scenarios.retail import generate_retail

if TYPE_CHECKING:
    from driftloop.features.repo_template import RepoSpec
    from driftloop.tabular.infer import TableSchema

__all__ = [
    "SCENARIOS",
    "create_fraud_project",
    "create_project",
    "create_table_project",
]

SCENARIOS = ("retail", "fraud")


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
    if scenario == "fraud":
        return create_fraud_project(target, seed, overrides)
    if seed < 0:
        raise UsageError(f"--seed must be a whole number >= 0, got {seed}")
    target = target.expanduser().resolve()
    _refuse_existing(target)
    try:
        scenario_cfg = RetailScenarioConfig.model_validate({**(overrides or {}), "seed": seed})
        # each store asks for its products' forecasts ROUNDS_PER_DAY times a day, one
        # request a store: the canary fitted to that pace (120 requests a day by default)
        per_day = scenario_cfg.n_stores * ROUNDS_PER_DAY
        config = ProjectConfig(project=_project_name(target), scenario=scenario_cfg)
        config = config.model_copy(
            update={
                "rollout": RolloutConfig.model_validate(
                    rollout_settings(per_day, config.labels.delay_days)
                )
            }
        )
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
        atomic_write_parquet(data.sales, project_layout(staged).raw_events_path)
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


def create_fraud_project(
    target: Path, seed: int = 1, overrides: Mapping[str, Any] | None = None
) -> Project:
    """The card-fraud example (the spec's Q3): generated transactions made into a table
    project, with real-time activity features; classification, chargebacks known 7 days
    later. ``overrides`` sets FraudScenario fields (``n_cards``, ``days``, ``shift`` ...)."""
    from driftloop.scenarios.fraud import FraudScenario, generate_fraud

    if seed < 0:
        raise UsageError(f"--seed must be a whole number >= 0, got {seed}")
    try:
        scenario = FraudScenario(seed=seed, **dict(overrides or {}))
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    truth = {
        "scenario": "fraud",
        "seed": seed,
        "shift_date": scenario.shift_date.isoformat(),
        "shift_enabled": scenario.shift,
        "before": "bursts: large, far from home, minutes apart, often at night",
        "after": "account takeover: ordinary amounts, near home, by day, online digital goods",
    }
    project, _ = create_table_project(
        target,
        f"generated: driftloop init --scenario fraud --seed {seed}",
        ["card_id"],
        "timestamp",
        "is_fraud",
        task="classification",
        label_delay="7d",
        frame=generate_fraud(scenario),
        activity="amount",
        truth=truth,
    )
    return project


def create_table_project(
    target: Path,
    source: str,
    entity: Sequence[str],
    timestamp: str,
    label: str,
    task: str | None = None,
    label_delay: str | None = None,
    frame: pd.DataFrame | None = None,
    activity: str | None = None,
    truth: Mapping[str, Any] | None = None,
) -> tuple[Project, TableSchema]:
    """A project from the user's table: the table as imported, the config fitted to it,
    and its Feast repository (``feature_repo/``). All or nothing.

    ``frame``: the table itself (``source`` then only says where it came from).
    ``activity``: a numeric column whose real-time activity features the server keeps
    (decayed event counts, the amount against its usual). ``truth``: a generated
    scenario's ground truth, kept beside the data."""
    from driftloop.features.repo_template import write_repo
    from driftloop.tabular.infer import infer_schema, prepare_table, read_table

    target = target.expanduser().resolve()
    _refuse_existing(target)
    delay = _whole_days(label_delay)
    if task not in (None, "regression", "classification"):
        raise UsageError(f"--task {task!r}: choose regression or classification")
    if frame is None:
        frame = read_table(source, Path.cwd())
    schema = infer_schema(frame, list(entity), timestamp, label, task, delay)  # type: ignore[arg-type,unused-ignore]
    events = prepare_table(frame, schema).rename(columns={timestamp: TIMESTAMP_COLUMN})
    name = _project_name(target)
    config = _table_config(name, source, timestamp, schema, events)
    spec, schema = _repo_spec(name, schema, config, events, activity)
    with staged_directory(target) as staging:
        (staging / CONFIG_FILENAME).write_text(
            "# driftloop project made from your table by `driftloop init --data`; every key\n"
            "# is shown with its value. The features are defined in feature_repo/features.py.\n"
            + dump_config(config),
            encoding="utf-8",
        )
        staged = Project(root=staging, config=config)
        atomic_write_parquet(events, project_layout(staged).raw_events_path)
        write_repo(staging, spec)
        if truth is not None:
            staged.scenario_truth_path.write_text(json.dumps(truth, indent=2), encoding="utf-8")
        staged.state_dir.mkdir()
    return Project.load(target), schema


def _table_config(
    name: str, source: str, timestamp: str, schema: TableSchema, events: pd.DataFrame
) -> ProjectConfig:
    """The project's config: where the table came from, and the settings fitted to it."""
    target = events[schema.target]
    raw = {
        "project": name,
        "data": {
            "source": source,
            "entity": list(schema.entity),
            "timestamp": timestamp,
            "target": schema.target,
        },
        **table_settings(schema, is_counts(target), target_range(target)),
    }
    try:
        return ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(Path("inferred settings"), exc)) from exc


def _repo_spec(
    name: str,
    schema: TableSchema,
    config: ProjectConfig,
    events: pd.DataFrame,
    activity: str | None,
) -> tuple[RepoSpec, TableSchema]:
    """The Feast repository's spec (history windows by the table's pace, calendar parts,
    activity features), and the schema with a note for each calendar column it reuses."""
    from driftloop.features.repo_template import RepoSpec

    daily_or_slower = schema.spacing >= timedelta(hours=12)
    if activity is not None and activity not in schema.numeric:
        raise UsageError(f"activity column {activity!r} is not one of the numeric columns")
    windows = (
        [timedelta(days=7), timedelta(days=28)]
        if daily_or_slower or activity is not None  # labels come days late: days of them
        else [timedelta(days=1), timedelta(days=7)]
    )
    stamps = events[TIMESTAMP_COLUMN]
    timed = bool((stamps != stamps.dt.floor("D")).any())  # times of day, not only dates
    calendar, schema = _calendar(schema, timed, windows, activity)
    spec = RepoSpec(
        project=name,
        entity=schema.entity,
        entity_types=schema.entity_types,
        target=schema.target,
        numeric=schema.numeric,
        categorical=schema.categorical,
        calendar=calendar,
        delay=timedelta(days=config.labels.delay_days),
        windows=windows,
        ttl=timedelta(days=config.features.ttl_days),
        activity_amount=activity,
        nullable=[c for c in schema.numeric if bool(events[c].isna().any())],
    )
    return spec, schema


def _whole_days(label_delay: str | None) -> timedelta | None:
    """``--label-delay`` parsed; refused unless whole days (the loop works in days)."""
    from driftloop.tabular.infer import parse_duration

    delay = parse_duration(label_delay, "--label-delay") if label_delay else None
    if delay is not None and delay % timedelta(days=1):
        raise UsageError(
            f"--label-delay {label_delay}: driftloop's loop works in whole days; round it up "
            f"to {math.ceil(delay / timedelta(days=1))}d"
        )
    return delay


def _calendar(
    schema: TableSchema, timed: bool, windows: Sequence[timedelta], activity: str | None
) -> tuple[list[str], TableSchema]:
    """The calendar parts to derive from the timestamp, and the schema with a check for
    each of the user's columns that takes a derived name: a calendar part the user has is
    used as the user's column (not derived twice); a history or activity name is refused.
    """
    from dataclasses import replace

    fields = (*schema.numeric, *schema.categorical)
    generated = [*history_feature_names(schema.target, windows), TIMESTAMP_COLUMN]
    if activity is not None:
        generated += [*activity_feature_names(activity), *activity_state_names()]
    taken = [*schema.entity, schema.target, *fields]
    check_generated_names(taken, generated)
    own = [c for c in CALENDAR_FEATURES if c in fields]
    notes = tuple(
        f"column {name!r} has the name of a calendar feature driftloop derives from the "
        f"timestamp: the project uses your column (as a {kind} feature) instead; check it "
        f"is {name.replace('_', ' ')} of the event time, or rename it if it means something else"
        for name in own
        for kind in ["numeric" if name in schema.numeric else "categorical"]
    )
    calendar = [c for c in CALENDAR_FEATURES if (c != "hour" or timed) and c not in taken]
    return calendar, replace(schema, checks=schema.checks + notes)


def _refuse_existing(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ProjectError(
            f"{target} already exists and is not an empty folder: choose a new path, "
            "or remove it first (driftloop never overwrites a project)"
        )
