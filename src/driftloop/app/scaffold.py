"""``driftloop init``: a new project folder with config and generated raw data."""

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
    from driftloop.tabular.infer import TableSchema

__all__ = [
    "SCENARIOS",
    "create_fraud_project",
    "create_project",
    "create_table_project",
    "table_gate",
    "table_settings",
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


def _clamp(value: float, low: int, high: int) -> int:
    return int(max(low, min(high, round(value))))


def table_gate(task: str, target_range: tuple[float, float] | None) -> dict[str, Any]:
    """The quality gate init can justify from the table: against the champion only, plus
    sanity bounds the target's own range supports. No absolute metric or bias bound (a
    growing series is biased on its holdout; a logarithm's mean may be near zero); the
    smallest plausible prediction is a full range below the smallest target seen (a log
    target is often negative; a least-squares model goes a little below zero targets)."""
    if task == "classification":
        return {
            "metric": "roc_auc",
            "max_metric": None,
            "min_metric": None,
            "max_abs_bias": None,
            "min_prediction": 0.0,
        }
    floor = None
    if target_range is not None:
        low, high = target_range
        floor = float(f"{low - max(high - low, abs(low), 1.0):.4g}")
    return {"metric": "wape", "max_metric": None, "max_abs_bias": None, "min_prediction": floor}


def rollout_settings(per_day: float, label_delay_days: int) -> dict[str, Any]:
    """The rollout section fitted to a pace of ``per_day`` predictions.

    The first step (10 %) needs about three days of canary traffic (of the whole traffic
    when the slice is too sparse and shadow answers count) and, for the outcome
    gates, the labels of five; its deadline is three times what the slower of the two
    takes at this pace. The spec's 2,000 requests a step in 30 minutes need a busy online
    service; a retail chain of 10 stores asking 12 times a day gives a 10 % canary 12."""
    canary_per_day = max(per_day * 0.1, 0.1)
    min_requests = _clamp(canary_per_day * 3, 10, 2000)
    min_outcomes = _clamp(canary_per_day * 5, 20, 200)
    days_needed = max(min_requests, min_outcomes) / canary_per_day + label_delay_days
    max_days = _clamp(3 * days_needed, 3, 60)
    # A slice too sparse to reach min_requests by the deadline (one event a day: a canary
    # request every ten days) is judged on the challenger's answers to every request, its
    # own slice's and those it computes in shadow on the champion's (rollout.paired).
    sparse = canary_per_day * max_days < min_requests
    if sparse:
        # Counted this way the challenger answers every request, so three days of the whole
        # pace make a step (at least 3 answers: a challenger that fails outright fails all
        # three). Waiting for 10 at one event a day kept each new model 20 days from full
        # traffic (Puerto Rico's deaths); the step's real evidence is the gate's holdout.
        min_requests = _clamp(per_day * 3, 3, min_requests)
    return {
        "min_requests": min_requests,
        "guard_min_requests": min_requests,
        "min_duration_s": 12 * 3600.0,
        "max_duration_s": float(max_days * 86400),
        "check_interval_s": 4 * 3600.0,
        "p99_slack_ms": 25.0,
        "outcomes": {"min_outcomes": min_outcomes},
        **({"paired": {"count_shadow": True}} if sparse else {}),
    }


def table_settings(
    schema: TableSchema, counts: bool = False, target_range: tuple[float, float] | None = None
) -> dict[str, Any]:
    """Config sections fitted to a user's table: its task, its pace of events, its span.

    ``counts``: the target is a non-negative whole number (Poisson loss fits it).
    ``target_range``: its smallest and largest value (the gate's sanity floor)."""
    span_days = max((schema.last - schema.first).days, 1)
    per_day = schema.rows / span_days
    per_week = per_day * 7
    task = schema.task
    counts = counts and task == "regression"
    objective = "binary" if task == "classification" else "poisson" if counts else "regression"
    gate = table_gate(task, target_range)
    holdout = _clamp(span_days * 0.05, 7, 28)
    return {
        "labels": {"delay_days": max(1, math.ceil(schema.label_delay / timedelta(days=1)))},
        "features": {"ttl_days": 3650},
        "training": {
            "task": task,
            "window_days": _clamp(span_days * 0.5, 60, 365),
            "validation_days": holdout,
            "holdout_days": holdout,
            "min_train_rows": _clamp(per_day * 20, 50, 500),
            "model": {
                "type": "lightgbm",
                "params": {
                    "objective": objective,
                    "learning_rate": 0.05,
                    "num_leaves": 31,
                    "min_data_in_leaf": _clamp(per_day, 10, 40),
                    "feature_fraction": 0.9,
                    "lambda_l2": 1.0,
                },
            },
            "gate": gate,
        },
        "monitoring": {
            # A classifier's log loss rests on the few positives of a window (tens of
            # fraud a week in the fraud example): two weeks of them, and a rise of 50 %
            # (a 20 % rise is within a week's noise; the fraud replay's pre-shift weeks
            # reached 1.5x).
            **({"accuracy_ratio": 1.5, "window_days": 14} if task == "classification" else {}),
            "min_rows": _clamp(per_week * 0.5, 30, 500),
            "min_labels": _clamp(per_week * 0.3, 20, 200),
            # driftloop's calendar features and the table's own calendar positions
            "exclude_features": list(dict.fromkeys([*CALENDAR_FEATURES, *schema.calendar])),
        },
        "rollout": rollout_settings(per_day, schema.label_delay.days),
    }


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
    from driftloop.features.repo_template import RepoSpec, write_repo
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
    raw = {
        "project": name,
        "data": {
            "source": source,
            "entity": list(schema.entity),
            "timestamp": timestamp,
            "target": schema.target,
        },
        **table_settings(schema, _counts(events[schema.target]), _range(events[schema.target])),
    }
    try:
        config = ProjectConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(Path("inferred settings"), exc)) from exc
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


def _range(values: pd.Series) -> tuple[float, float]:
    v = values.to_numpy("float64")
    return float(v.min()), float(v.max())


def _counts(values: pd.Series) -> bool:
    v = values.to_numpy("float64")
    return bool(len(v) and (v >= 0).all() and (v == v.round()).all())


def _refuse_existing(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ProjectError(
            f"{target} already exists and is not an empty folder: choose a new path, "
            "or remove it first (driftloop never overwrites a project)"
        )
