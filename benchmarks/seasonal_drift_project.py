"""Drift alarms of a project's first version on the year after it: weeks judged by its profile.

    .venv/bin/python benchmarks/seasonal_drift_project.py PROJECT AS_OF [--weeks 52]

Trains a version of PROJECT as of AS_OF (registered in the project's registry, like
``driftloop train --as-of``), then judges each of the ``--weeks`` 7-day windows after
AS_OF, as the project's feature store serves them (history features included), against
that version's reference profile with the project's monitoring settings: the features
``monitoring`` judges (``exclude_features`` and calendar positions left out), at their
levels (calibrated or fixed, as the project's ``monitoring.calibrate_thresholds`` says).
Prints the weeks with a data-drift alert, with a feature at "act", with two or more at
"act" (the loop's feature-drift trigger) and the (feature, week) alarms.

Before/after on the Chicago table (``python -m driftloop.app.datasets chicago chicago.csv``,
``driftloop init chi --data chicago.csv --entity station --timestamp date --target
rides``, and a copy with ``monitoring.calibrate_thresholds: false``), see docs/drift.md.
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta

from driftloop.features.store import FeatureStore
from driftloop.features.training_set import build_training_set
from driftloop.monitoring.assess import column_drift, judged_features
from driftloop.monitoring.sketch import BinnedSketch
from driftloop.pipeline.train import run_training
from driftloop.project import Project
from driftloop.registry import open_registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project")
    parser.add_argument("as_of", type=date.fromisoformat)
    parser.add_argument("--weeks", type=int, default=52)
    args = parser.parse_args()
    project = Project.load(args.project)
    store = FeatureStore(project)
    store.apply()
    registry = open_registry(project)
    version = run_training(project, registry, args.as_of, actor="benchmark").version
    profile = registry.load_profile(version)
    cfg = project.config.monitoring
    end = args.as_of + timedelta(days=7 * args.weeks - 1)
    frame = build_training_set(store, args.as_of, end)
    day = frame["event_timestamp"].dt.tz_convert(None).dt.date
    names = judged_features(profile, cfg)
    weeks = alert = act = act2 = alarms = 0
    for i in range(args.weeks):
        start = args.as_of + timedelta(days=7 * i)
        rows = frame[(day >= start) & (day < start + timedelta(days=7))]
        levels = []
        for name in names:
            sketch = BinnedSketch(profile.features[name].edges)
            sketch.update(rows[name].to_numpy("float64"))
            levels.append(column_drift(name, profile.features[name], sketch, cfg).level)
        if all(level == "not enough data" for level in levels):
            continue
        weeks += 1
        alarms += sum(level in ("warning", "act") for level in levels)
        alert += any(level in ("warning", "act") for level in levels)
        act += "act" in levels
        act2 += levels.count("act") >= 2
    print(
        f"{args.project} v{version} as of {args.as_of}: {len(names)} features judged, "
        f"{weeks} weeks; weeks with an alert {alert}, with 'act' {act}, with 2+ at 'act' "
        f"{act2}; alarms {alarms}"
    )


if __name__ == "__main__":
    main()
