"""Time train + register on the default retail scenario, against a bare MLflow baseline.

    .venv/bin/python benchmarks/train_register.py [--repeats N]

driftloop: ``run_training`` (point-in-time training set, LightGBM with early stopping,
holdout metrics, gate against the champion, ONNX export with parity check, reference
profile, MLflow run + version + alias with history).
Baseline "bare MLflow": the same training set and LightGBM parameters, then
``mlflow.lightgbm.log_model`` and ``create_model_version``; no gate, ONNX or profile.
Both run in this process on the same project, each against its own fresh registry.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table


def bare_mlflow(project, store, split, tracking_uri: str, artifacts: str) -> float:  # type: ignore[no-untyped-def]
    import lightgbm as lgb
    import mlflow

    from driftloop.features.training_set import build_training_set

    started = time.perf_counter()
    frame = build_training_set(store, split.train_start, split.holdout_end)
    day = frame["event_timestamp"].dt.tz_convert(None).dt.date
    train = frame[day <= split.train_end]
    valid = frame[(day >= split.validation_start) & (day <= split.validation_end)]
    names = list(store.layout.all_features)
    cfg = project.config.training.model
    params = {
        "verbosity": -1,
        "seed": 0,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
        **cfg.params,
    }
    booster = lgb.train(
        params,
        lgb.Dataset(train[names].to_numpy("float32"), train["units"]),
        num_boost_round=cfg.num_boost_round,
        valid_sets=[lgb.Dataset(valid[names].to_numpy("float32"), valid["units"])],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
    )
    mlflow.set_tracking_uri(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name("bare") or client.get_experiment(
        client.create_experiment("bare", artifacts)
    )
    with mlflow.start_run(experiment_id=exp.experiment_id) as run:
        info = mlflow.lightgbm.log_model(booster, name="model", pip_requirements=["lightgbm"])
    if not client.search_registered_models("name = 'bare'"):
        client.create_registered_model("bare")
    client.create_model_version("bare", source=info.model_uri, run_id=run.info.run_id)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    console = Console()

    from driftloop.app.scaffold import create_project
    from driftloop.features.store import FeatureStore
    from driftloop.pipeline.split import plan_split
    from driftloop.pipeline.train import run_training
    from driftloop.project import Project
    from driftloop.registry import open_registry

    with tempfile.TemporaryDirectory() as tmp:
        with console.status("creating the default retail project"):
            project = create_project(Path(tmp) / "bench", "retail", 1)
            store = FeatureStore(project)
            store.apply()
        cfg = project.config
        sales = store.layout.read_events()
        last = sales["date"].max().date()
        as_of = last  # labels up to the day before the last
        split = plan_split(
            as_of,
            cfg.labels.delay_days,
            cfg.training.window_days,
            cfg.training.validation_days,
            cfg.training.holdout_days,
        )
        registry = open_registry(Project.load(project.root))
        registry.check_reachable()  # create the SQLite schema outside the timings
        ours: list[float] = []
        bare: list[float] = []
        for i in range(args.repeats):
            with console.status(f"run {i + 1}/{args.repeats}"):
                ours.append(run_training(project, registry, as_of, actor="bench").duration_s)
                bare.append(
                    bare_mlflow(
                        project,
                        store,
                        split,
                        f"sqlite:///{tmp}/bare.db",
                        Path(tmp, "bare-artifacts").as_uri(),
                    )
                )
    table = Table(title="train + register, default retail scenario (10 stores x 12 products)")
    for column in ("pipeline", "runs", "median s", "min s", "first s"):
        table.add_column(column, justify="left" if column == "pipeline" else "right")
    for name, times in (("driftloop train", ours), ("baseline: bare MLflow", bare)):
        table.add_row(
            name,
            str(len(times)),
            f"{statistics.median(times):.2f}",
            f"{min(times):.2f}",
            f"{times[0]:.2f}",
        )
    console.print(table)
    ratio = statistics.median(ours) / statistics.median(bare)
    console.print(
        f"driftloop / baseline (median): {ratio:.2f}x; the difference buys the gate against "
        "the champion, the ONNX copy with its parity check, the reference profile and lineage."
    )


if __name__ == "__main__":
    main()
