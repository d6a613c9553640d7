"""The training pipeline: point-in-time training set, time split, train, gate, register.

Everything that can fail on the user's input is checked before the registry is touched,
so a bad run leaves the registry as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from driftloop.config import TrainingConfig
from driftloop.errors import DataError
from driftloop.faults import crash_point
from driftloop.features.store import FeatureStore
from driftloop.features.training_set import build_training_set
from driftloop.monitoring.calibration import calibrate_profile
from driftloop.pipeline.estimators import TrainedModel
from driftloop.pipeline.gate import GateVerdict, evaluate_gate, prediction_sanity
from driftloop.pipeline.lineage import frame_digest, pip_requirements
from driftloop.pipeline.metrics import MIN_HOLDOUT_ROWS, evaluate, too_few_to_evaluate
from driftloop.pipeline.onnx_export import OnnxExport, export_onnx
from driftloop.pipeline.recency import Recency, final_model, fit_candidate
from driftloop.pipeline.record import (
    FrameHook,
    choose_alias,
    gate_document,
    lineage_tags,
    logged_metrics,
    run_tags,
)
from driftloop.pipeline.split import TimeSplit, grow_split, plan_split
from driftloop.project import Project
from driftloop.registry import CHAMPION, ModelRegistry, RegistrationRequest, aliases
from driftloop.statistics.accuracy import row_log_loss
from driftloop.statistics.paired import PairedGain, paired_gain
from driftloop.statistics.profile import ReferenceProfile, build_profile

__all__ = ["TRAIN_STEPS", "Recency", "TrainingResult", "run_training"]

TRAIN_STEPS = (
    "check registry",
    "build training set",
    "train model",
    "evaluate on holdout",
    "compare with champion",
    "export ONNX",
    "profile reference data",
    "register version",
)


@dataclass(frozen=True)
class TrainingResult:
    """What a training run produced and decided."""

    version: str
    alias: str | None
    alias_reason: str
    gate: GateVerdict
    as_of: date
    split: TimeSplit
    rows: dict[str, int]
    metrics: dict[str, float]
    champion_metrics: dict[str, float] | None
    onnx: str
    data_digest: str
    duration_s: float


def _check_parts(
    parts: dict[str, pd.DataFrame], split: TimeSplit, min_train: int, label: str, task: str
) -> None:
    for name, part in parts.items():
        floor = min_train if name == "train" else 1
        if len(part) < floor:
            raise DataError(
                f"too few rows for the split: {name} has {len(part)} rows between "
                f"{getattr(split, name + '_start')} and {getattr(split, name + '_end')} "
                f"(needs {floor}); choose a later --as-of, widen training.window_days, "
                "or lower training.min_train_rows"
            )
        labels = part[label]
        if labels.isna().any():
            raise DataError(
                f"{int(labels.isna().sum())} NaN labels ({label}) in the {name} rows; "
                "fix or drop those rows in the raw data"
            )
    for name, floor in (("train", 1), ("holdout", MIN_HOLDOUT_ROWS)):
        problem = too_few_to_evaluate(task, parts[name][label], floor)
        if problem:
            widen = "training.holdout_days" if name == "holdout" else "training.window_days"
            raise DataError(
                f"the {name} days {getattr(split, name + '_start')} to "
                f"{getattr(split, name + '_end')} hold {problem}: nothing is trained or "
                f"registered, the retrain waits for more labelled days; widen {widen} "
                "(loop.retrain_holdout_days for the loop's retrains) or choose a later --as-of"
            )


def _as_of(project: Project, days: pd.Series, as_of: date | None) -> date:
    """The training date: ``as_of``, else the day the last event's label arrives."""
    delay = project.config.labels.delay_days
    first, last = days.min(), days.max()
    chosen = as_of or last + timedelta(days=delay)
    if chosen - timedelta(days=delay) < first:
        raise DataError(
            f"--as-of {chosen}: no labels are known yet (the data starts {first} and labels "
            f"arrive {delay} day(s) late); choose a date after {first + timedelta(days=delay)}"
        )
    return chosen


@dataclass(frozen=True)
class _Champion:
    """The champion on a candidate's holdout (all None without a champion)."""

    version: str | None = None
    metrics: dict[str, float] | None = None  # its metrics on this holdout
    incomparable: str | None = None  # why it could not be compared
    predictions: np.ndarray | None = None  # on this holdout
    registered: float | None = None  # its own holdout value of the gate metric


def _champion_on(
    registry: ModelRegistry, holdout: pd.DataFrame, task: str, label: str, metric: str
) -> _Champion:
    """The champion scored on ``holdout``."""
    champion = registry.alias(CHAMPION)
    if champion is None:
        return _Champion()
    model = registry.load_model(champion.version)
    missing = [n for n in model.feature_names if n not in holdout.columns]
    if missing:
        return _Champion(
            champion.version,
            incomparable=(
                f"champion v{champion.version} uses features {missing} that the feature store no "
                "longer has; review and promote by hand with `driftloop models promote`"
            ),
        )
    preds = model.predict(holdout)
    own = champion.metrics.get(f"holdout_{metric}")
    return _Champion(
        champion.version,
        evaluate(task, holdout[label].to_numpy(), preds),
        predictions=preds,
        registered=None if own is None else float(own),
    )


def run_training(
    project: Project,
    registry: ModelRegistry,
    as_of: date | None = None,
    *,
    actor: str = "cli",
    on_pass: str | None = None,
    progress: Callable[[str], None] = lambda _step: None,
    frame_hook: FrameHook | None = None,
    hook_holdout: bool = False,
    recency: Recency | None = None,
    tags: dict[str, str] | None = None,
) -> TrainingResult:
    """Train, gate against the champion on the same holdout, and register the version.

    ``frame_hook`` may alter the train and validation rows (the demo uses it to train a
    deliberately broken model); the holdout is altered only with ``hook_holdout``.
    ``recency`` weights recent rows (the loop's retrains); ``tags`` join the lineage."""
    started = time.perf_counter()
    cfg = project.config.training
    store = FeatureStore(project)
    progress(TRAIN_STEPS[0])
    registry.check_reachable()

    progress(TRAIN_STEPS[1])
    chosen, split, frame, parts = _training_parts(project, store, as_of, frame_hook, hook_holdout)
    label = store.layout.label
    features = list(store.layout.all_features)

    progress(TRAIN_STEPS[2])
    xy = {k: (v[features], v[label].to_numpy("float64")) for k, v in parts.items()}
    fitted = fit_candidate(cfg, xy["train"], xy["validation"], parts, recency)

    progress(TRAIN_STEPS[3])
    holdout_pred = fitted.model.predict(parts["holdout"])
    metrics = evaluate(cfg.task, xy["holdout"][1], holdout_pred)

    progress(TRAIN_STEPS[4])
    verdict, champion_version, champion_metrics = _gate(
        registry, cfg, parts["holdout"], label, metrics, holdout_pred, float(xy["train"][1].max())
    )

    trained, refit = final_model(cfg, fitted, parts, label, verdict.passed)

    progress(TRAIN_STEPS[5])
    onnx = export_onnx(trained, parts["holdout"])
    progress(TRAIN_STEPS[6])
    profile = _reference_profile(project, parts, features, trained.predict(parts["validation"]))

    progress(TRAIN_STEPS[7])
    digest = frame_digest(frame)
    rows = {k: len(v) for k, v in parts.items()}
    tags = {
        **lineage_tags(project, store, chosen, split, digest, champion_version),
        **run_tags(verdict, onnx.reason, actor, frame_hook, fitted.description, refit),
        **(tags or {}),
    }
    logged = logged_metrics(metrics, champion_metrics, rows, trained.best_iteration)
    registered = registry.register(
        _request(trained, cfg.task, logged, tags, profile, verdict, onnx, f"train as of {chosen}")
    )
    crash_point("train.registered")
    alias, reason = choose_alias(verdict, champion_version, on_pass or cfg.on_pass)
    if alias is not None:
        aliases.point(registry, alias, registered.version, kind="train", actor=actor, reason=reason)
    return TrainingResult(
        version=registered.version,
        alias=alias,
        alias_reason=reason,
        gate=verdict,
        as_of=chosen,
        split=split,
        rows=rows,
        metrics=metrics,
        champion_metrics=champion_metrics,
        onnx=onnx.reason,
        data_digest=digest,
        duration_s=time.perf_counter() - started,
    )


def _request(
    trained: TrainedModel,
    task: str,
    metrics: dict[str, float],
    tags: dict[str, str],
    profile: ReferenceProfile,
    verdict: GateVerdict,
    onnx: OnnxExport,
    run_name: str,
) -> RegistrationRequest:
    """The new version as the registry stores it, in one go."""
    return RegistrationRequest(
        model_kind=trained.kind,
        model=trained.model,
        task=task,
        feature_names=trained.feature_names,
        params=trained.params,
        metrics=metrics,
        tags=tags,
        profile=profile,
        gate=gate_document(verdict),
        gate_passed=verdict.passed,
        onnx_model=onnx.model,
        pip_requirements=pip_requirements(trained.kind),
        run_name=run_name,
    )


def _training_parts(
    project: Project,
    store: FeatureStore,
    as_of: date | None,
    frame_hook: FrameHook | None,
    hook_holdout: bool,
) -> tuple[date, TimeSplit, pd.DataFrame, dict[str, pd.DataFrame]]:
    """The day trained as of, its split (grown where the newest days hold too few rows),
    the training frame and its train / validation / holdout parts, checked."""
    cfg = project.config.training
    days = store.layout.event_days(store.layout.read_events())
    chosen = _as_of(project, days, as_of)
    split = plan_split(
        chosen,
        project.config.labels.delay_days,
        cfg.window_days,
        cfg.validation_days,
        cfg.holdout_days,
        first_day=days.min() + timedelta(days=store.layout.warmup_days),
    )
    frame = build_training_set(store, split.train_start, split.holdout_end)
    label = store.layout.label
    if len(frame):  # an empty window is named by the checks below
        split = grow_split(
            split,
            frame["event_timestamp"].dt.tz_convert(None).dt.date.to_numpy(),
            frame[label].to_numpy("float64"),
            cfg.task,
        )
    parts = split.parts(frame)
    if frame_hook is not None:
        # By default only what the model learns from: the holdout stays as the feature
        # store serves it. ``hook_holdout`` alters it too: a corrupted offline export,
        # consistent with itself, that the gate cannot see (the canary must).
        for name in ("train", "validation", "holdout") if hook_holdout else ("train", "validation"):
            parts[name] = frame_hook(parts[name])
    _check_parts(parts, split, cfg.min_train_rows, label, cfg.task)
    return chosen, split, frame, parts


def _gate(
    registry: ModelRegistry,
    cfg: TrainingConfig,
    holdout: pd.DataFrame,
    label: str,
    metrics: dict[str, float],
    holdout_pred: np.ndarray,
    label_max: float,
) -> tuple[GateVerdict, str | None, dict[str, float] | None]:
    """The gate's verdict on the candidate against the champion on the same holdout."""
    champion = _champion_on(registry, holdout, cfg.task, label, cfg.gate.metric)
    paired = None
    if champion.predictions is not None and cfg.gate.significance is not None:
        paired = _paired(cfg.task, holdout, label, champion.predictions, holdout_pred)
    verdict = evaluate_gate(
        cfg.gate,
        metrics,
        prediction_sanity(holdout_pred),
        label_max,
        champion.metrics,
        champion.version,
        paired,
        champion.registered,
    )
    if champion.incomparable:
        from driftloop.pipeline.gate import GateCheck

        check = GateCheck(
            "champion_comparable", False, float("nan"), float("nan"), champion.incomparable
        )
        verdict = GateVerdict(
            verdict.metric, verdict.candidate, None, champion.version, (*verdict.checks, check)
        )
    return verdict, champion.version, champion.metrics


def _paired(
    task: str, holdout: pd.DataFrame, label: str, champion: np.ndarray, candidate: np.ndarray
) -> PairedGain:
    """Both models' per-row losses on the holdout (absolute error, or log loss for a
    classifier), paired by row and grouped by event day."""
    y = holdout[label].to_numpy("float64")
    if task == "classification":
        losses = row_log_loss(y, champion), row_log_loss(y, candidate)
    else:
        losses = np.abs(champion - y), np.abs(candidate - y)
    return paired_gain(*losses, _event_days(holdout))


def _event_days(frame: pd.DataFrame) -> np.ndarray:
    """Each row's event day (UTC), as ``datetime64[D]``."""
    days: np.ndarray = frame["event_timestamp"].dt.tz_convert(None).to_numpy("datetime64[D]")
    return days


def _reference_profile(
    project: Project, parts: dict[str, pd.DataFrame], features: list[str], valid_pred: np.ndarray
) -> ReferenceProfile:
    """The profile monitoring compares with: the predictions on the validation days and,
    with ``monitoring.calibrate_thresholds``, the features over the whole training window
    (train and validation: a year of data holds its seasons), each calibrated on windows
    of ``monitoring.window_days`` from those days. Otherwise the validation days' features
    with the fixed levels."""
    mon, bins = project.config.monitoring, project.config.training.profile_bins
    if not mon.calibrate_thresholds:
        columns = {n: parts["validation"][n].to_numpy("float64") for n in features}
        return build_profile(columns, valid_pred, bins)
    window = pd.concat([parts["train"], parts["validation"]], ignore_index=True)
    columns = {n: window[n].to_numpy("float64") for n in features}
    stamps = _event_days(window)
    profile = build_profile(columns, valid_pred, bins)
    return calibrate_profile(
        profile,
        columns,
        stamps.astype("int64"),
        mon.window_days,
        mon.min_rows,
        mon.calibration_min_windows,
    )
