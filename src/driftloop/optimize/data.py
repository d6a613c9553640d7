"""The rows an optimization is judged on: the parent version's own window, rebuilt from
the feature store (train part for calibration and distillation, holdout for the table)."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftloop.errors import DataError
from driftloop.features.store import FeatureStore
from driftloop.features.training_set import build_training_set
from driftloop.pipeline.lineage import frame_digest
from driftloop.pipeline.split import TimeSplit
from driftloop.project import Project
from driftloop.registry.base import ModelVersion

__all__ = ["MIN_CALIBRATION_ROWS", "VersionData", "load_version_data"]

MIN_CALIBRATION_ROWS = 10


@dataclass(frozen=True)
class VersionData:
    """A version's training window split as it was trained, with its feature names."""

    split: TimeSplit
    features: tuple[str, ...]
    train: pd.DataFrame
    validation: pd.DataFrame
    holdout: pd.DataFrame
    digest_matches: bool
    label: str = "units"

    def x(self, part: str) -> np.ndarray:
        frame: pd.DataFrame = getattr(self, part)
        return frame[list(self.features)].to_numpy("float32")

    def y(self, part: str) -> np.ndarray:
        frame: pd.DataFrame = getattr(self, part)
        return frame[self.label].to_numpy("float64")

    def calibration(self, rows: int, seed: int) -> np.ndarray:
        """Up to ``rows`` rows of the train part, drawn without replacement."""
        x = self.x("train")
        if len(x) <= rows:
            return x
        pick = np.random.default_rng(seed).choice(len(x), size=rows, replace=False)
        return x[np.sort(pick)]


def _split(parent: ModelVersion) -> TimeSplit:
    raw = parent.tags.get("driftloop.split")
    if not raw:
        raise DataError(
            f"version {parent.version} records no training split (tag driftloop.split): "
            "optimize a version registered by `driftloop train`"
        )
    return TimeSplit.from_json(raw)


def load_version_data(project: Project, parent: ModelVersion) -> VersionData:
    """Rebuild ``parent``'s training frame from the feature store and split it by time."""
    split = _split(parent)
    features = tuple(json.loads(parent.tags["driftloop.features"]))
    store = FeatureStore(project)
    frame = build_training_set(store, split.train_start, split.holdout_end)
    missing = [n for n in features if n not in frame.columns]
    if missing:
        raise DataError(
            f"version {parent.version} uses features {missing} that the feature store no longer "
            "has; optimize a version trained on the current feature definitions"
        )
    parts = split.parts(frame)
    if len(parts["train"]) < MIN_CALIBRATION_ROWS:
        raise DataError(
            f"no calibration data: the feature store has {len(parts['train'])} rows in version "
            f"{parent.version}'s training part ({split.train_start} to {split.train_end}), "
            f"INT8 calibration and distillation need at least {MIN_CALIBRATION_ROWS}; restore "
            "that period's raw sales and run `driftloop features apply`"
        )
    if parts["holdout"].empty:
        raise DataError(
            f"no holdout rows for version {parent.version} ({split.holdout_start} to "
            f"{split.holdout_end}) in the feature store: restore that period's raw sales and "
            "run `driftloop features apply`"
        )
    return VersionData(
        split=split,
        features=features,
        train=parts["train"],
        validation=parts["validation"],
        holdout=parts["holdout"],
        digest_matches=frame_digest(frame) == parent.tags.get("driftloop.data_digest"),
        label=store.layout.label,
    )
