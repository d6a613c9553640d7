"""Request times the prediction log cannot store are refused at the request, by name."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from driftloop.errors import RequestError
from driftloop.serving.entity_parse import parse_time


@pytest.mark.parametrize("value", ["0732-01-01T00:00:00", "9999-12-31", "1600-06-01T12:00:00Z"])
def test_a_time_outside_the_logs_range_is_refused_naming_the_field(value: str) -> None:
    # found by the fuzzer: year 732 was accepted, then the log flush failed on it
    with pytest.raises(RequestError, match=r"event_time .* is outside the times driftloop logs"):
        parse_time(value, "event_time")


def test_times_inside_the_range_are_read_as_utc() -> None:
    moment = parse_time("2024-03-01T12:00:00+01:00", "event_time")
    assert moment == datetime(2024, 3, 1, 11, tzinfo=UTC)
