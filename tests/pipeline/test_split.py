from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from driftloop.pipeline.split import SplitTooSmall, grow_split, plan_split


def test_worked_example_with_a_one_day_label_delay() -> None:
    s = plan_split(date(2020, 3, 1), 1, window_days=60, validation_days=7, holdout_days=7)
    # Labels known on 2020-03-01 go up to 2020-02-29 (leap year).
    assert s.holdout_end == date(2020, 2, 29)
    assert s.holdout_start == date(2020, 2, 23)
    assert (s.validation_start, s.validation_end) == (date(2020, 2, 16), date(2020, 2, 22))
    assert s.train_end == date(2020, 2, 15)
    assert s.train_start == date(2020, 1, 1)  # 60 days ending 2020-02-29
    assert s.window == (date(2020, 1, 1), date(2020, 2, 29))


def test_longer_label_delay_moves_everything_back() -> None:
    s = plan_split(date(2020, 3, 1), 7, window_days=60, validation_days=7, holdout_days=7)
    assert s.holdout_end == date(2020, 2, 23)


def test_window_is_clipped_to_the_first_day_of_data() -> None:
    s = plan_split(date(2020, 3, 1), 1, 365, 7, 7, first_day=date(2019, 12, 1))
    assert s.train_start == date(2019, 12, 1)


def test_zero_day_parts_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one day"):
        plan_split(date(2020, 3, 1), 1, 60, 0, 7)


def test_split_round_trips_through_its_tag_and_cuts_frames_by_day() -> None:
    import pandas as pd

    from driftloop.pipeline.split import TimeSplit

    split = TimeSplit(
        date(2020, 1, 1),
        date(2020, 1, 10),
        date(2020, 1, 11),
        date(2020, 1, 12),
        date(2020, 1, 13),
        date(2020, 1, 14),
    )
    assert TimeSplit.from_json(split.to_json()) == split
    stamps = pd.date_range("2019-12-31 23:00", "2020-01-15 01:00", freq="6h", tz="UTC")
    frame = pd.DataFrame({"event_timestamp": stamps, "i": range(len(stamps))})
    parts = split.parts(frame)
    assert len(parts["train"]) == 40 and len(parts["validation"]) == 8
    assert len(parts["holdout"]) == 8
    assert parts["train"]["event_timestamp"].min() == pd.Timestamp("2020-01-01 05:00", tz="UTC")


def _daily(n_days: int, per_day: int = 1, end: date = date(2024, 6, 30)) -> np.ndarray:
    return np.array([end - timedelta(days=i) for i in range(n_days) for _ in range(per_day)])


def test_a_sparse_holdout_reaches_back_until_it_holds_enough_rows() -> None:
    split = plan_split(date(2024, 7, 1), 1, 365, 7, 7)  # one row a day: 7-row parts
    days = _daily(365)
    grown = grow_split(split, days, np.ones(days.size), "regression", min_rows=10)
    assert (grown.holdout_start, grown.holdout_end) == (date(2024, 6, 21), date(2024, 6, 30))
    assert (grown.validation_start, grown.validation_end) == (date(2024, 6, 11), date(2024, 6, 20))
    assert grown.train_start == split.train_start and grown.train_end == date(2024, 6, 10)


def test_a_split_large_enough_keeps_its_days() -> None:
    split = plan_split(date(2024, 7, 1), 1, 365, 7, 7)
    days = _daily(365, per_day=3)
    assert grow_split(split, days, np.ones(days.size), "regression", min_rows=10) == split


def test_a_classifier_holdout_reaches_back_to_hold_both_classes() -> None:
    split = plan_split(date(2024, 7, 1), 1, 120, 7, 7)
    days = _daily(120, per_day=5)
    labels = np.zeros(days.size)
    labels[days == date(2024, 6, 18)] = 1.0  # the newest positives: 13 days back
    labels[days == date(2024, 6, 1)] = 1.0
    grown = grow_split(split, days, labels, "classification", min_rows=10)
    assert grown.holdout_start == date(2024, 6, 18)
    assert grown.validation_start == date(2024, 6, 1)


def test_a_split_that_would_take_over_a_third_of_the_window_waits() -> None:
    split = plan_split(date(2024, 7, 1), 1, 60, 7, 7)
    days = _daily(60, per_day=5)
    labels = np.zeros(days.size)
    labels[(days < date(2024, 6, 1)) & (np.arange(days.size) % 5 == 0)] = 1.0  # none since
    with pytest.raises(
        SplitTooSmall,
        match=r"the holdout days 2024-06-24 to 2024-06-30 hold "
        r"35 rows, all negative: .*more than 33% of the window's 300.*the "
        r"retrain waits for more labelled days",
    ):
        grow_split(split, days, labels, "classification", min_rows=10)
