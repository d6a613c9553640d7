"""The fixed-schedule baseline of a replay: a model retrained every N days, scored offline.

``replay`` compares the loop with this control on the same days. It depends on the offline
features only, so a replay reads its training set before serving and trains its models in a
thread while the days are served (:class:`ScheduleThread`; LightGBM leaves Python's lock
while it trains): the control costs little wall time beside the serving.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pandas as pd

from driftloop.features.layout import project_layout
from driftloop.features.store import FeatureStore
from driftloop.features.training_set import build_training_set
from driftloop.pipeline.estimators import train_model
from driftloop.project import Project

__all__ = [
    "ScheduleThread",
    "schedule_frame",
    "scheduled_from",
    "scheduled_predictions",
    "scored",
]


def scored(project: Project, rows: pd.DataFrame, prediction: np.ndarray) -> pd.DataFrame:
    """Per row: its event day, ``prediction`` and its label (NaN where it has none)."""
    label = project_layout(project).label
    return pd.DataFrame(
        {
            "day": rows["event_timestamp"].dt.tz_convert(None).dt.date.to_numpy(),
            "prediction": prediction,
            "label": rows[label].to_numpy("float64"),
        }
    )


def scheduled_predictions(
    store: FeatureStore,
    start: date,
    end: date,
    every_days: int,
    progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> pd.DataFrame:
    """A model retrained every ``every_days`` on the training window known then (the
    project's model, window and validation split, no gate), scored on the days until
    the next retrain: the fixed-schedule baseline."""
    frame = schedule_frame(store, start, end)
    return scheduled_from(store.project, frame, start, end, every_days, progress)


def schedule_frame(store: FeatureStore, start: date, end: date) -> pd.DataFrame:
    """The training set every fixed-schedule retrain of ``start``..``end`` draws from."""
    cfg, delay = store.project.config.training, store.project.config.labels.delay_days
    first_label = start - timedelta(days=delay + cfg.window_days - 1)
    return build_training_set(store, first_label, end - timedelta(days=1))


def scheduled_from(
    project: Project,
    frame: pd.DataFrame,
    start: date,
    end: date,
    every_days: int,
    progress: Callable[[int, int], None] = lambda _done, _total: None,
) -> pd.DataFrame:
    """``scheduled_predictions`` on its training set ``frame`` (no feature store: it may run
    in a thread beside the serving)."""
    cfg, delay = project.config.training, project.config.labels.delay_days
    day = frame["event_timestamp"].dt.tz_convert(None).dt.date
    layout = project_layout(project)
    features, label = list(layout.all_features), layout.label
    parts, starts = [], list(_range(start, end, every_days))
    for i, as_of in enumerate(starts):
        last = as_of - timedelta(days=delay)
        valid_from = last - timedelta(days=cfg.validation_days - 1)
        train = frame[(day >= last - timedelta(days=cfg.window_days - 1)) & (day < valid_from)]
        valid = frame[(day >= valid_from) & (day <= last)]
        serve = frame[(day >= as_of) & (day < min(as_of + timedelta(days=every_days), end))]
        if len(train) < cfg.min_train_rows or valid.empty or serve.empty:
            continue
        model = train_model(
            cfg.model,
            cfg.task,
            cfg.seed,
            (train[features], train[label].to_numpy("float64")),
            (valid[features], valid[label].to_numpy("float64")),
        )
        parts.append(scored(project, serve, model.predict(serve)))
        progress(i + 1, len(starts))
    if not parts:
        return pd.DataFrame(columns=["day", "prediction", "label"])
    return pd.concat(parts, ignore_index=True)


def _range(start: date, end: date, step: int) -> list[date]:
    out, day = [], start
    while day < end:
        out.append(day)
        day += timedelta(days=step)
    return out


class ScheduleThread:
    """The fixed-schedule control trained in a thread during the ``with`` block."""

    def __init__(
        self, project: Project, store: FeatureStore, start: date, end: date, every_days: int
    ) -> None:
        from concurrent.futures import Future, ThreadPoolExecutor

        self._steps: list[tuple[int, int]] = []
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="replay-schedule")
        self._future: Future[pd.DataFrame] | None = None
        self._args = (
            None
            if every_days <= 0
            else (project, schedule_frame(store, start, end), start, end, every_days)
        )

    def __enter__(self) -> ScheduleThread:
        if self._args is not None:
            record = lambda done, total: self._steps.append((done, total))  # noqa: E731
            self._future = self._pool.submit(scheduled_from, *self._args, record)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._pool.shutdown(wait=True)  # a failed serving still waits for the thread

    def result(self, progress: Callable[[int, int], None]) -> pd.DataFrame:
        """The control's predictions; ``progress`` hears each retrain it made."""
        if self._future is None:
            return pd.DataFrame(columns=["day", "prediction", "label"])
        frame = self._future.result()
        for done, total in self._steps:
            progress(done, total)
        return frame
