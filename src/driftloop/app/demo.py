"""The main job: the specification's Q5 story, end to end, on a simulated clock.

A retail demand forecaster (version 1, trained on what is known before serving starts)
answers every store and product through a real HTTP server, several times a day, with
the actual sales coming back a day late. A retrain on a corrupted export (the sales
history in cases of 12, not units: consistent offline, so it passes its gate) is
submitted and must be caught by its canary. Then the consumer-behaviour shift hits:
levels, product mix and the response to price and promotions change. The controller
has to notice, retrain on the recent window, gate, canary and promote on its own, and
accuracy has to come back.

The demo measures itself against the issue's targets (detection within 7 days of the
shift, accuracy within 10 % of the pre-shift level within 21 days, the broken challenger
never above the first step; measured in :mod:`driftloop.app.demo_measure`) and writes
``report.html`` with plots. ``--no-shift`` runs
the same days without the shift: the control, in which nothing should be retrained.

The demo owns its folder: a folder it made before (marked ``.driftloop/demo``) is
replaced; any other non-empty folder is refused.
"""

from __future__ import annotations

import math
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from driftloop.app.demo_measure import key_numbers, measure
from driftloop.app.scaffold import create_project
from driftloop.config import CONFIG_FILENAME, dump_config
from driftloop.errors import ProjectError
from driftloop.loop.replay import (
    DEFAULT_SCHEDULE_DAYS,
    REPLAY_STEPS,
    ReplayResult,
    day_records,
    run_replay,
    versions_table,
)
from driftloop.loop.simulate import DayServed, Simulation
from driftloop.loop.timeline import Timeline, TimelineEvent
from driftloop.pipeline.train import TrainingResult, run_training
from driftloop.project import Project

__all__ = ["DEMO_STEPS", "DemoResult", "run_demo"]

DEMO_STEPS = (
    "create project",
    "compute and apply features",
    "train v1",
    "serve and run the loop",
    "score the frozen v1 and the weekly retrain (controls)",
    "write the report",
)
DEMO_MARKER = "demo"
# Traffic of a small chain is far below the spec's 2,000 requests a step: the demo's
# rollout needs fewer requests and judges over simulated hours, written in its config.
# The demo's server shares one process (and the GIL) with its client, the controller and
# the retrains, so its latencies say more about that than about a model: the p99 gates
# allow 25 ms of difference (a version 2.6x slower on 38 requests was rolled back once).
DEMO_ROLLOUT = {
    "min_requests": 30,
    "guard_min_requests": 30,
    "min_duration_s": 12 * 3600.0,
    "p99_slack_ms": 25.0,
    "max_duration_s": 5 * 86400.0,
    "check_interval_s": 4 * 3600.0,
    "outcomes": {"min_outcomes": 200},
}


@dataclass(frozen=True)
class DemoResult:
    project: Path
    replaced_previous: bool
    shift: bool
    shift_date: date
    horizon: tuple[date, date]
    requests: int
    feedback: int
    reference_wape: float
    detection_days: int | None
    false_alarms_before_shift: int
    recovery_days: int | None
    frozen_recovery_days: int | None
    final_served_wape: float
    final_frozen_wape: float
    retrains: int
    promoted: tuple[str, ...]
    rolled_back: tuple[str, ...]
    broken_version: str
    broken_max_weight: float
    broken_predictions: int
    timeline: Timeline
    report: Path
    targets_met: bool


def _fresh_project(
    folder: Path,
    seed: int,
    shift: bool,
    scenario: dict[str, Any] | None,
    rollout: dict[str, Any] | None,
) -> tuple[Project, bool]:
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
    overrides: dict[str, Any] = {**(scenario or {}), "shift": {"enabled": shift}}
    project = create_project(folder, "retail", seed, overrides=overrides)
    # Marked at once: a demo that fails later is still recognised and replaced next time.
    (project.state_dir / DEMO_MARKER).write_text("made by driftloop demo\n", encoding="utf-8")
    section = project.config.rollout.model_dump()
    wanted = {**DEMO_ROLLOUT, **(rollout or {})}
    section.update({k: v for k, v in wanted.items() if k != "outcomes"})
    section["outcomes"] = {**section["outcomes"], **DEMO_ROLLOUT["outcomes"]}  # type: ignore[dict-item]
    # The project is left set up the way the demo ran it: retrains go to the canary (the
    # first version still becomes champion), and the admin API is on for `serve` + `loop run`.
    config = project.config.model_copy(
        update={
            "rollout": project.config.rollout.model_validate(section),
            "training": project.config.training.model_copy(update={"on_pass": "challenger"}),
        }
    )
    token = secrets.token_urlsafe(24)
    text = dump_config(config).replace(
        "  admin_token: null\n",
        f"  admin_token: '{token}'  # made for this demo; DRIFTLOOP_ADMIN_TOKEN overrides it\n",
    )
    (folder / CONFIG_FILENAME).write_text(
        "# driftloop project configuration (made by driftloop demo: the rollout section is\n"
        "# scaled to the demo's traffic); every key is shown with its value.\n" + text,
        encoding="utf-8",
    )
    (folder / CONFIG_FILENAME).chmod(0o600)  # it holds the admin token
    return Project.load(folder), replaced


def _in_cases(frame: pd.DataFrame) -> pd.DataFrame:
    """The corrupted export: the sales history in cases of 12 instead of units."""
    history = [c for c in frame.columns if c.startswith("units_")]
    return frame.assign(**{c: frame[c] / 12.0 for c in history})


def run_demo(
    folder: Path,
    seed: int = 1,
    *,
    quick: bool = False,
    shift: bool = True,
    rounds_per_day: int = 12,
    horizon_days: tuple[int, int] | None = None,
    scenario: dict[str, Any] | None = None,
    rollout: dict[str, Any] | None = None,
    schedule_days: int = DEFAULT_SCHEDULE_DAYS,
    progress: Callable[[str], None] = lambda _step: None,
    on_day: Callable[[DayServed], None] | None = None,
) -> DemoResult:
    """Run the whole story in ``folder`` (created, or an earlier demo replaced).

    ``horizon_days`` (days before, after the shift), ``scenario`` (keys of the retail
    scenario, e.g. ``n_stores``) and ``rollout`` (keys of the rollout section) shrink or
    steady the run for tests.
    """
    folder = folder.expanduser().resolve()
    progress(DEMO_STEPS[0])
    project, replaced = _fresh_project(folder, seed, shift, scenario, rollout)
    shift_date = project.config.scenario.shift.date
    before, after = horizon_days or ((10, 28) if quick else (14, 42))
    start, end = shift_date - timedelta(days=before), shift_date + timedelta(days=after)
    broken_day = start  # before any drift signal can be sustained: no retrain competes

    broken: dict[str, TrainingResult] = {}

    def submit_broken(sim: Simulation, day: date) -> None:
        challenger_cfg = project.config.model_copy(
            update={
                "training": project.config.training.model_copy(update={"on_pass": "challenger"})
            }
        )
        result = run_training(
            Project(project.root, challenger_cfg),
            sim.loop.registry,
            day,
            actor="demo: a retrain on a corrupted export",
            frame_hook=_in_cases,
            hook_holdout=True,
        )
        broken["result"] = result
        if result.gate.passed:
            why = "a retrain on a corrupted export (sales history in cases) submitted by hand"
            sim.loop.start_rollout(result.version, why)

    steps = dict(zip(REPLAY_STEPS, DEMO_STEPS[1:], strict=True))
    replay = run_replay(
        project,
        start,
        end,
        schedule_days=schedule_days,
        rounds_per_day=rounds_per_day,
        interventions={broken_day: submit_broken},
        on_day=on_day,
        progress=lambda step: progress(steps[step]),
    )
    progress(DEMO_STEPS[-1])
    return _summarize(replay, broken.get("result"), shift, shift_date, replaced)


def _summarize(
    replay: ReplayResult,
    broken: TrainingResult | None,
    shift: bool,
    shift_date: date,
    replaced: bool,
) -> DemoResult:
    from driftloop.app.report import write_report

    project, registry, days = replay.project, replay.registry, replay.days
    served, events, horizon = replay.served, replay.events, replay.horizon
    m = measure(replay, broken, shift, shift_date)
    key = key_numbers(replay, m, shift)
    per_day = day_records(replay)
    mon = project.config.monitoring
    timeline = Timeline(
        title="driftloop demo: "
        + (
            "a regime shift, detected and repaired by the loop"
            if shift
            else "the control run (no shift)"
        ),
        project=str(project.root),
        scenario=_scenario_text(project, shift, horizon, len(served)),
        shift_date=shift_date if shift else None,
        thresholds={
            "psi_warning": mon.psi_warning,
            "psi_act": mon.psi_act,
            "prediction_kl": mon.prediction_kl,
            "accuracy_ratio": mon.accuracy_ratio,
        },
        reference_wape=m.reference,
        days=tuple(per_day),
        events=tuple(
            TimelineEvent(e.at, e.kind, e.message, e.version, dict(e.evidence))
            for e in events
            if e.kind != "check"
        ),
        key_numbers=tuple(key),
        versions=versions_table(registry),
    )
    timeline.save(project.state_dir / "timeline.json")
    report = write_report(timeline, project.root)
    met = all(k.met is not False for k in key)
    return DemoResult(
        project=project.root,
        replaced_previous=replaced,
        shift=shift,
        shift_date=shift_date,
        horizon=horizon,
        requests=sum(d.requests for d in days),
        feedback=sum(d.feedback for d in days),
        reference_wape=m.reference,
        detection_days=m.detection,
        false_alarms_before_shift=m.false_alarms,
        recovery_days=m.recovery,
        frozen_recovery_days=m.frozen_recovery,
        final_served_wape=m.trailing.get(m.last_day, math.nan),
        final_frozen_wape=m.frozen_trailing.get(m.last_day, math.nan),
        retrains=m.retrains,
        promoted=m.promoted,
        rolled_back=m.rolled_back,
        broken_version=m.broken_version,
        broken_max_weight=m.broken_max,
        broken_predictions=m.broken_served,
        timeline=timeline,
        report=report,
        targets_met=met,
    )


def _scenario_text(project: Project, shift: bool, horizon: tuple[date, date], rows: int) -> str:
    sc = project.config.scenario
    text = (
        f"{sc.n_stores} stores x {sc.n_products} products, daily unit sales; served "
        f"{horizon[0]} to {horizon[1] - timedelta(days=1)} through a real HTTP server, every "
        f"store and product asking for its forecast several times a day ({rows:,} answers), "
        f"the actual sales fed back {project.config.labels.delay_days} day(s) late. "
    )
    if shift:
        s = sc.shift
        text += (
            f"On {s.date} a pandemic-style shift phases in over {s.ramp_days} days for "
            f"{s.store_share:.0%} of stores and {s.product_share:.0%} of products: demand "
            f"x{s.demand_up_multiplier:g} or x{s.demand_down_multiplier:g}, price elasticity "
            f"x{s.elasticity_multiplier:g}, promotion lift x{s.promo_lift_multiplier:g}."
        )
    else:
        text += "No shift: the control run, in which the loop should retrain nothing."
    return text
