from __future__ import annotations

from datetime import date

import pytest

from driftloop.pipeline.split import plan_split


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

    split = TimeSplit(date(2020, 1, 1), date(2020, 1, 10), date(2020, 1, 11), date(2020, 1, 12),
                      date(2020, 1, 13), date(2020, 1, 14))  # fmt: skip
    assert TimeSplit.from_json(split.to_json()) == split
    stamps = pd.date_range("2019-12-31 23:00", "2020-01-15 01:00", freq="6h", tz="UTC")
    frame = pd.DataFrame({"event_timestamp": stamps, "i": range(len(stamps))})
    parts = split.parts(frame)
    assert len(parts["train"]) == 40 and len(parts["validation"]) == 8
    assert len(parts["holdout"]) == 8
    assert parts["train"]["event_timestamp"].min() == pd.Timestamp("2020-01-01 05:00", tz="UTC")
