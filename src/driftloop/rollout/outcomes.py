"""Outcomes per version: business values and delayed labels from ``/v1/feedback``, joined by
request id to the version that answered, and the canary gates built on them.

The join runs on the server's flushed logs (prediction log and feedback segments, Parquet
read with DuckDB), so it sees outcomes up to the last flush.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from driftloop.config import OutcomeGateConfig
from driftloop.config.rollout import PairedConfig
from driftloop.errors import DataError
from driftloop.monitoring.predlog import (
    feedback_dir,
    predictions_dir,
    read_feedback,
    read_predictions,
    segment_files,
)
from driftloop.rollout.judge import Evidence
from driftloop.rollout.sequential import MeanStats, SequentialResult, paired_mean_test
from driftloop.statistics.accuracy import or_none, roc_auc, row_log_loss, wape_of, wape_sums
from driftloop.storage.segments import read_segment_files

__all__ = [
    "LogOutcomeSource",
    "OutcomeSource",
    "VersionOutcomes",
    "outcome_evidence",
    "paired_evidence",
    "paired_losses",
    "row_losses",
    "version_outcomes",
]


@dataclass(frozen=True, slots=True)
class VersionOutcomes:
    """One version's business outcomes and labelled predictions in a window."""

    business: MeanStats
    labels: int = 0
    abs_error: float = 0.0  # sum of |prediction - label|
    label_sum: float = 0.0  # sum of |label|
    # classification: the labelled positives and the ROC AUC of the version's probabilities
    # (None for regression, or while one class is missing)
    positives: int = 0
    roc_auc: float | None = None
    task: str = "regression"
    # scored in shadow: per served version, this version's loss minus that version's on the
    # same labelled requests (paired evidence)
    paired: Mapping[str, MeanStats] = field(default_factory=dict)

    @property
    def wape(self) -> float | None:
        return or_none(wape_of(self.abs_error, self.label_sum)) if self.labels else None


def _stats(values: np.ndarray) -> MeanStats:
    return MeanStats.of(values)


def row_losses(y: np.ndarray, p: np.ndarray, task: str) -> np.ndarray:
    """Per-row loss: log loss for classification, absolute error otherwise (the loss WAPE
    sums)."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    if task == "classification":
        return row_log_loss(y, p)
    return np.asarray(np.abs(p - y), dtype=np.float64)


def paired_losses(
    predictions: pd.DataFrame, labels: pd.DataFrame, task: str
) -> dict[str, dict[str, MeanStats]]:
    """Per shadow version, per served version: the shadow's loss minus the served one's on
    the same labelled requests (``labels``: request_id, value)."""
    shadow = predictions.loc[
        predictions["route"] == "shadow", ["request_id", "version", "prediction"]
    ]
    served = predictions.loc[
        predictions["route"] != "shadow", ["request_id", "version", "prediction"]
    ]
    if shadow.empty or served.empty or labels.empty:
        return {}
    pairs = (
        shadow.drop_duplicates("request_id", keep="last")
        .merge(
            served.drop_duplicates("request_id", keep="last"),
            on="request_id",
            suffixes=("_shadow", "_served"),
        )
        .merge(labels.drop_duplicates("request_id", keep="last"), on="request_id")
    )
    pairs = pairs.loc[pairs["version_shadow"] != pairs["version_served"]]
    y = pairs["value"].to_numpy(dtype=np.float64)
    diff = row_losses(y, pairs["prediction_shadow"].to_numpy(), task) - row_losses(
        y, pairs["prediction_served"].to_numpy(), task
    )
    pairs = pairs.assign(diff=diff)
    out: dict[str, dict[str, MeanStats]] = {}
    for (challenger, stable), group in pairs.groupby(["version_shadow", "version_served"]):
        out.setdefault(str(challenger), {})[str(stable)] = MeanStats.of(group["diff"].to_numpy())
    return out


def version_outcomes(
    predictions: pd.DataFrame,
    feedback: pd.DataFrame,
    business_metric: str,
    task: str = "regression",
) -> dict[str, VersionOutcomes]:
    """Per version: predictions (request_id, version, route, prediction) joined to feedback
    (request_id, kind, name, value). Shadow answers are left out: no user saw them."""
    if predictions.empty or feedback.empty:
        return {}
    served = predictions.loc[
        predictions["route"] != "shadow", ["request_id", "version", "prediction"]
    ]
    served = served.drop_duplicates("request_id", keep="last")
    outcomes = feedback.dropna(subset=["request_id"])
    labelled = outcomes.loc[outcomes["kind"] == "label", ["request_id", "value"]]
    paired = paired_losses(predictions, labelled, task)
    joined = outcomes.merge(served, on="request_id", how="inner")
    out: dict[str, VersionOutcomes] = {}
    for version, group in joined.groupby("version", sort=True):
        business = group.loc[
            (group["kind"] == "business") & (group["name"] == business_metric), "value"
        ].to_numpy(dtype=np.float64)
        labels = group.loc[group["kind"] == "label"]
        y = labels["value"].to_numpy(dtype=np.float64)
        p = labels["prediction"].to_numpy(dtype=np.float64)
        auc = or_none(roc_auc(y, p)) if task == "classification" else None
        out[str(version)] = VersionOutcomes(
            _stats(business),
            int(y.size),
            *wape_sums(y, p),
            int((y == 1.0).sum()),
            auc,
            task,
            paired.pop(str(version), {}),
        )
    for version, against in paired.items():  # scored in shadow only: no served outcomes
        out[version] = VersionOutcomes(MeanStats(0, 0.0, 0.0), task=task, paired=against)
    return out


def outcome_evidence(
    canary: VersionOutcomes | None,
    stable: VersionOutcomes | None,
    cfg: OutcomeGateConfig,
    task: str = "regression",
) -> tuple[Evidence, Evidence]:
    """Business and accuracy gates; ``passed`` is None until both sides have enough outcomes
    (a project that sends no outcomes is never held back by them)."""
    n = cfg.min_outcomes
    business: Evidence
    cb = canary.business if canary else MeanStats(0, 0.0, 0.0)
    sb = stable.business if stable else MeanStats(0, 0.0, 0.0)
    if cb.n >= n and sb.n >= n and sb.mean != 0.0:
        ratio = cb.mean / sb.mean
        tol = cfg.business_tolerance
        ok = ratio >= 1.0 - tol if cfg.higher_is_better else ratio <= 1.0 + tol
        bound = 1.0 - tol if cfg.higher_is_better else 1.0 + tol
        business = Evidence(
            "business_ratio",
            ratio,
            bound,
            ok,
            f"mean {cfg.business_metric} canary {cb.mean:.4g} (n={cb.n}) / stable "
            f"{sb.mean:.4g} (n={sb.n})",
        )
    else:
        business = Evidence(
            "business_ratio",
            None,
            1.0,
            None,
            f"{cfg.business_metric} outcomes canary {cb.n}, stable {sb.n}; needs {n} each",
        )
    if task == "classification" or any(s and s.task == "classification" for s in (canary, stable)):
        return business, _ranking_evidence(canary, stable, cfg)
    cw = canary.wape if canary and canary.labels >= n else None
    sw = stable.wape if stable and stable.labels >= n else None
    if cw is not None and sw is not None and sw > 0:
        ratio = cw / sw
        accuracy = Evidence(
            "wape_ratio",
            ratio,
            1.0 + cfg.accuracy_tolerance,
            ratio <= 1.0 + cfg.accuracy_tolerance,
            f"labelled WAPE canary {cw:.4f} / stable {sw:.4f}",
        )
    else:
        labels = (canary.labels if canary else 0, stable.labels if stable else 0)
        accuracy = Evidence(
            "wape_ratio",
            None,
            1.0 + cfg.accuracy_tolerance,
            None,
            f"labels canary {labels[0]}, stable {labels[1]}; needs {n} each",
        )
    return business, accuracy


MIN_POSITIVES = 5  # labelled positives each side needs before ROC AUCs are compared


def _ranking_evidence(
    canary: VersionOutcomes | None, stable: VersionOutcomes | None, cfg: OutcomeGateConfig
) -> Evidence:
    """Classification: the canary's ranking error (1 - ROC AUC) over the stable's, on each
    one's labelled traffic. A probability scale can move with a retrain (the loop's
    recency weighting does that on purpose); which transactions come first is what a
    fraud team acts on."""
    bound = 1.0 + cfg.accuracy_tolerance
    sides = (canary, stable)
    ready = all(
        s is not None
        and s.labels >= cfg.min_outcomes
        and s.positives >= MIN_POSITIVES
        and s.roc_auc is not None
        for s in sides
    )
    if not ready:
        counts = [(s.labels, s.positives) if s else (0, 0) for s in sides]
        named = zip(("canary", "stable"), counts, strict=True)
        got = ", ".join(f"{name} {n} labels ({k} positive)" for name, (n, k) in named)
        return Evidence(
            "ranking_error_ratio",
            None,
            bound,
            None,
            f"{got}; needs {cfg.min_outcomes} labels and {MIN_POSITIVES} positives each",
        )
    assert canary is not None and stable is not None
    assert canary.roc_auc is not None and stable.roc_auc is not None
    ratio = (1.0 - canary.roc_auc) / max(1.0 - stable.roc_auc, 1e-9)
    return Evidence(
        "ranking_error_ratio",
        ratio,
        bound,
        ratio <= bound,
        f"labelled ROC AUC canary {canary.roc_auc:.4f} ({canary.positives} positives) / "
        f"stable {stable.roc_auc:.4f} ({stable.positives} positives)",
    )


def paired_evidence(
    canary: VersionOutcomes | None, stable: str, cfg: PairedConfig, task: str = "regression"
) -> tuple[Evidence, SequentialResult]:
    """The paired test: the canary's loss minus the stable's on the same labelled requests
    (the canary scored them in shadow). ``passed`` True: significantly lower loss; False:
    significantly higher; None: not decided (or fewer than ``min_pairs`` pairs)."""
    diffs = canary.paired.get(stable) if canary is not None else None
    diffs = diffs or MeanStats(0, 0.0, 0.0)
    test = paired_mean_test(
        diffs, alpha=cfg.alpha, mixture_sd=cfg.mixture_sd, min_pairs=cfg.min_pairs
    )
    passed = None if test.decision == "continue" else test.estimate < 0.0
    loss = "log loss" if task == "classification" else "absolute error"
    detail = (
        f"canary minus stable {loss} on the same {diffs.n} labelled requests (the "
        f"canary scored them in shadow): {diffs.mean:+.4g}, always-valid p <= "
        f"{test.p_value:.3g}"
    )
    if diffs.n < cfg.min_pairs:
        detail += f"; needs {cfg.min_pairs} pairs"
    return Evidence("paired_loss", diffs.mean if diffs.n else None, 0.0, passed, detail), test


class OutcomeSource(Protocol):
    """Outcomes per version for predictions served since a moment."""

    def outcomes(self, since: datetime) -> Mapping[str, VersionOutcomes]: ...


class LogOutcomeSource:
    """Reads the server's flushed prediction log and feedback segments under ``state_dir``.

    Each segment is read once and kept (a segment is written whole and never changed;
    its size, mtime and inode are checked at every read): a tick reads only the segments
    flushed since the last one, then joins in memory."""

    def __init__(self, state_dir: Path, business_metric: str, task: str = "regression") -> None:
        self.state_dir = state_dir
        self.business_metric = business_metric
        self.task = task
        self._kept: dict[Path, tuple[tuple[int, int, int], pd.DataFrame]] = {}

    def outcomes(self, since: datetime) -> Mapping[str, VersionOutcomes]:
        """Only the segments written from the day before ``since`` on are read (a day's
        margin for the clock's zone): a prediction served since then is in a segment
        written since, and its outcomes, sent after it was answered, too. So a tick
        costs the same late in a long run as early."""
        from_day = (since - timedelta(days=1)).strftime("%Y-%m-%d")
        columns = ("request_id", "version", "route", "prediction")
        logged = self._rows(predictions_dir(self.state_dir), (*columns, "served_at"), from_day)
        if logged is None:  # segments of another schema: read them as one query
            predictions = read_predictions(
                self.state_dir, f"served_at >= TIMESTAMPTZ '{since.isoformat()}'", columns, from_day
            )
        else:
            begun = pd.Timestamp(since)  # a naive moment is UTC, as DuckDB reads it
            begun = begun.tz_localize("UTC") if begun.tzinfo is None else begun
            predictions = logged.loc[logged["served_at"] >= begun, list(columns)]
            predictions = predictions.reset_index(drop=True)
        if predictions.empty:
            return {}
        columns = ("request_id", "kind", "name", "value")
        feedback = self._rows(feedback_dir(self.state_dir), columns, from_day)
        if feedback is None:
            feedback = read_feedback(self.state_dir, "", columns, from_day)
        feedback = feedback.loc[feedback["request_id"].notna()].reset_index(drop=True)
        return version_outcomes(predictions, feedback, self.business_metric, self.task)

    def _rows(self, folder: Path, columns: tuple[str, ...], from_day: str) -> pd.DataFrame | None:
        """The segments of ``folder`` from ``from_day`` on, in order (as one DuckDB query
        reads them); None when a segment lacks one of ``columns``."""
        parts = []
        for path in segment_files(folder, from_day):
            try:
                st = path.stat()
            except FileNotFoundError:  # quarantined meanwhile
                continue
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
            kept = self._kept.get(path)
            if kept is None or kept[0] != stamp:
                frame = _segment(folder, path, columns)
                if frame is None:
                    return None
                kept = (stamp, frame)
                self._kept[path] = kept
            if not kept[1].empty:
                parts.append(kept[1])
        if from_day:  # forget segments the next reads start after
            for path in [p for p in self._kept if p.parent.parent == folder]:
                if path.parent.name < from_day:
                    del self._kept[path]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def _segment(folder: Path, path: Path, columns: tuple[str, ...]) -> pd.DataFrame | None:
    """One segment's ``columns`` (pyarrow: a tenth of a DuckDB query's cost on one small
    file; the same frame); one that pyarrow cannot read goes through ``read_segments``'s
    reader, which quarantines a damaged segment. None when it lacks a column."""
    try:
        frame = pd.read_parquet(path, columns=list(columns))
    except Exception:  # damaged, or another schema: the reader that knows what to do
        try:
            return read_segment_files(folder, [path], columns)
        except DataError:
            return None
    for column in frame.columns:  # timestamps as UTC, as read_segments gives them
        values = frame[column]
        if pd.api.types.is_datetime64_any_dtype(values) and values.dt.tz is None:
            frame[column] = values.dt.tz_localize("UTC")
        elif isinstance(values.dtype, pd.DatetimeTZDtype):
            frame[column] = values.dt.tz_convert("UTC")
    return frame
