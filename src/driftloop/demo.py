"""The main job, as far as it exists: a scenario project through features, registry, server.

Steps: create a retail project, compute and apply the features, build a point-in-time
training set, measure the regime shift in the raw data, train version 1 on what is known
at the shift, train version 2 eight weeks later (gated against version 1 on the same
holdout), serve that day's forecasts for every entity through a real HTTP server with
the outcomes sent back as feedback, and check the served features for training-serving
skew from the prediction log. Each step reports through ``progress``.

The demo owns its folder: a folder it made before (marked ``.driftloop/demo``) is
replaced; any other non-empty folder is refused.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd

from driftloop.config import CONFIG_FILENAME
from driftloop.errors import ProjectError
from driftloop.features.engineering import ENTITY_KEYS
from driftloop.features.skew import PredictionLogSource, SkewReport, check_skew
from driftloop.features.store import ApplyResult, FeatureStore
from driftloop.features.training_set import LABEL_COLUMN, build_training_set
from driftloop.pipeline.train import TrainingResult, run_training
from driftloop.project import Project
from driftloop.registry import open_registry
from driftloop.scaffold import create_project

__all__ = ["DEMO_STEPS", "DemoResult", "ServedDay", "ShiftEvidence", "run_demo"]

DEMO_STEPS = (
    "create project",
    "compute and apply features",
    "build training set",
    "measure the shift",
    "train v1 at the shift",
    "train v2 after the shift",
    "serve a day over HTTP",
    "check training-serving skew",
)
DEMO_MARKER = "demo"
RETRAIN_AFTER_DAYS = 56
SHIFT_WINDOW_DAYS = 28


@dataclass(frozen=True)
class ShiftEvidence:
    """Mean daily units per series before and after the shift date."""

    shift_date: str
    affected_before: float
    affected_after: float
    unaffected_before: float
    unaffected_after: float


@dataclass(frozen=True)
class ServedDay:
    """One simulated day of traffic through a real server."""

    day: str
    requests: int
    predictions: int
    versions: tuple[str, ...]
    feedback: int
    server_p50_ms: float
    logged_rows: int


@dataclass(frozen=True)
class DemoResult:
    project: Path
    series: int
    raw_rows: int
    applied: ApplyResult
    materialized_at: str
    training_rows: int
    training_window: tuple[str, str]
    training_complete_share: float
    skew: SkewReport
    shift: ShiftEvidence | None
    served: ServedDay
    first: TrainingResult
    second: TrainingResult
    replaced_previous: bool


def _fresh_project(folder: Path, seed: int) -> tuple[Project, bool]:
    """A new demo project in ``folder``; (project, whether an earlier demo was replaced)."""
    replaced = False
    if folder.exists() and any(folder.iterdir()):
        marker = folder / ".driftloop" / DEMO_MARKER
        if not ((folder / CONFIG_FILENAME).is_file() and marker.is_file()):
            raise ProjectError(
                f"{folder} exists, is not empty and is not an earlier demo: pass another "
                "--project folder for the demo (it never overwrites other work)"
            )
        shutil.rmtree(folder)
        replaced = True
    project = create_project(folder, "retail", seed)
    (project.state_dir / DEMO_MARKER).write_text("made by driftloop demo\n", encoding="utf-8")
    return project, replaced


def _shift_evidence(project: Project, sales: pd.DataFrame) -> ShiftEvidence | None:
    truth = json.loads(project.scenario_truth_path.read_text(encoding="utf-8"))
    if not truth["shift_enabled"]:
        return None
    shift = pd.Timestamp(truth["shift_date"])
    days = pd.to_datetime(sales["date"])
    affected = sales[ENTITY_KEYS[0]].isin(truth["affected_stores"]) & sales[ENTITY_KEYS[1]].isin(
        truth["affected_products"]
    )
    before = (days >= shift - timedelta(days=SHIFT_WINDOW_DAYS)) & (days < shift)
    after = (days >= shift + timedelta(days=SHIFT_WINDOW_DAYS)) & (
        days < shift + timedelta(days=2 * SHIFT_WINDOW_DAYS)
    )

    def mean(mask: pd.Series) -> float:
        return float(sales.loc[mask, LABEL_COLUMN].mean())

    return ShiftEvidence(
        shift_date=truth["shift_date"],
        affected_before=mean(affected & before),
        affected_after=mean(affected & after),
        unaffected_before=mean(~affected & before),
        unaffected_after=mean(~affected & after),
    )


def _serve_day(project: Project, store: FeatureStore, day: date) -> ServedDay:
    """Serve one day's demand forecasts for every entity over HTTP, then send the outcomes."""
    from driftloop.segments import read_segments
    from driftloop.serving.server import BackgroundServer, build_context
    from driftloop.traffic import replay_days

    with BackgroundServer(build_context(project)) as server:
        stats = replay_days(store, server.url, [day], batch=False)
    log = read_segments(project.state_dir / "predictions")
    return ServedDay(
        day=day.isoformat(), requests=stats.requests, predictions=stats.predictions,
        versions=stats.versions, feedback=stats.feedback,
        server_p50_ms=float(log["latency_ms"].median()), logged_rows=len(log),
    )  # fmt: skip


def run_demo(
    folder: Path, seed: int = 1, progress: Callable[[str], None] = lambda _step: None
) -> DemoResult:
    """Run every step on the project in ``folder``, creating it when absent."""
    folder = folder.expanduser().resolve()
    progress(DEMO_STEPS[0])
    project, replaced = _fresh_project(folder, seed)
    store = FeatureStore(project)
    sales = project.read_sales()

    progress(DEMO_STEPS[1])
    applied = store.apply()

    progress(DEMO_STEPS[2])
    scenario = project.config.scenario
    end = (scenario.shift.date if scenario.shift.enabled else scenario.end_date) - timedelta(days=1)
    start = max(scenario.start_date, end - timedelta(days=364))
    training = build_training_set(store, start, end)
    complete = float(training[list(store.layout.all_features)].notna().all(axis=1).mean())

    progress(DEMO_STEPS[3])
    shift = _shift_evidence(project, sales)

    registry = open_registry(project)
    progress(DEMO_STEPS[4])
    first_as_of = scenario.shift.date if scenario.shift.enabled else end
    first = run_training(project, registry, first_as_of, actor="demo")
    progress(DEMO_STEPS[5])
    serve_day = first_as_of + timedelta(days=RETRAIN_AFTER_DAYS)
    second = run_training(project, registry, serve_day, actor="demo")

    progress(DEMO_STEPS[6])
    served = _serve_day(project, store, serve_day)

    progress(DEMO_STEPS[7])
    skew = check_skew(
        store,
        PredictionLogSource(store, project.config.features.skew.sample_size),
        project.config.features.skew,
    )
    return DemoResult(
        served=served,
        project=project.root,
        replaced_previous=replaced,
        first=first,
        second=second,
        series=int(sales.groupby(list(ENTITY_KEYS)).ngroups),
        raw_rows=len(sales),
        applied=applied,
        materialized_at=serve_day.isoformat(),
        training_rows=len(training),
        training_window=(start.isoformat(), end.isoformat()),
        training_complete_share=complete,
        skew=skew,
        shift=shift,
    )
