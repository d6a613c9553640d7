from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from driftloop.clock import Clock, SimulatedClock, WallClock, ensure_utc

START = datetime(2020, 3, 1, tzinfo=UTC)


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(WallClock(), Clock)
    assert isinstance(SimulatedClock(START), Clock)


def test_simulated_sleep_advances_instantly() -> None:
    clock = SimulatedClock(START)
    clock.sleep(86_400 * 365)
    assert clock.now() == START + timedelta(days=365)


def test_simulated_clock_refuses_to_go_back() -> None:
    clock = SimulatedClock(START)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.set(START - timedelta(seconds=1))
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(timedelta(days=-1))


def test_naive_start_is_taken_as_utc() -> None:
    assert SimulatedClock(datetime(2020, 1, 1)).now() == datetime(2020, 1, 1, tzinfo=UTC)


def test_ensure_utc_converts_other_zones() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert ensure_utc(datetime(2020, 1, 1, 2, tzinfo=plus_two)) == datetime(2020, 1, 1, tzinfo=UTC)


def test_wall_clock_is_aware_utc() -> None:
    assert WallClock().now().tzinfo is UTC
