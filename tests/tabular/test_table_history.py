"""The history features of a table project against a brute-force recomputation."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from driftloop.features.table import (
    calendar_features,
    encode_categories,
    history_feature_names,
    history_features,
    window_label,
)


def _events(seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for card in ("a", "b", "c"):
        t = pd.Timestamp("2024-01-01", tz="UTC")
        for _ in range(40):
            t += pd.Timedelta(hours=int(rng.integers(1, 60)))
            rows.append({"card": card, "event_timestamp": t, "y": float(rng.integers(0, 2))})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_history_rows_equal_a_brute_force_recount() -> None:
    events = _events()
    delay, windows = timedelta(days=1), [timedelta(days=2), timedelta(days=7)]
    rows = history_features(events, ["card"], "y", delay, windows)
    assert list(rows.columns) == ["card", "event_timestamp", *history_feature_names("y", windows)]
    for row in rows.itertuples(index=False):
        day = row.event_timestamp - pd.Timedelta(delay)  # the day whose labels arrived
        mine = events[events["card"] == row.card]
        known = mine.loc[mine["event_timestamp"].dt.floor("D") == day, "event_timestamp"].max()
        assert mine.loc[mine["event_timestamp"] == known, "y"].item() == row.y_last
        for w in windows:
            inside = mine[
                (mine["event_timestamp"] > known - pd.Timedelta(w))
                & (mine["event_timestamp"] <= known)
            ]
            label = window_label(w)
            assert getattr(row, f"y_count_{label}") == len(inside)
            assert getattr(row, f"y_mean_{label}") == pytest.approx(inside["y"].mean())


def test_history_is_stamped_when_the_labels_batch_arrives_so_nothing_early_leaks() -> None:
    events = _events()
    rows = history_features(events, ["card"], "y", timedelta(days=2), [timedelta(days=3)])
    first_event = events.groupby("card")["event_timestamp"].min()
    first_row = rows.groupby("card")["event_timestamp"].min()
    assert ((first_row - first_event.dt.floor("D")) == pd.Timedelta(days=2)).all()
    assert (first_row > first_event).all()
    with pytest.raises(ValueError, match="whole number of days"):
        history_features(events, ["card"], "y", timedelta(hours=36), [timedelta(days=3)])


def test_window_labels_and_calendar_and_categories() -> None:
    assert [
        window_label(timedelta(days=7)),
        window_label(timedelta(hours=36)),
        window_label(timedelta(minutes=90)),
    ] == ["7d", "36h", "90m"]
    stamps = pd.Series(pd.to_datetime(["2024-03-04 05:00", "2024-12-31 23:00"], utc=True))
    cal = calendar_features(stamps)
    assert cal.to_dict("list") == {
        "hour": [5, 23],
        "day_of_week": [0, 1],
        "month": [3, 12],
        "day_of_year": [64, 366],
    }
    codes = encode_categories(pd.Series(["b", "z", None, "a"]), ["a", "b"])
    np.testing.assert_array_equal(codes, [1.0, -1.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="unknown calendar"):
        calendar_features(stamps, ["minute"])
