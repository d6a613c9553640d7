"""Rollout step arithmetic: next weight table, step index, schedule validation."""

from __future__ import annotations

import pytest

from driftloop.rollout.steps import next_weight, step_index, validate_steps

SPEC = (10.0, 50.0, 100.0)


@pytest.mark.parametrize(
    ("steps", "current", "expected"),
    [
        (SPEC, 0, 10.0),
        (SPEC, 10, 50.0),
        (SPEC, 50, 100.0),
        (SPEC, 100, None),
        ((100,), 0, 100.0),
        ((100,), 100, None),
        ((5, 25.5, 100), 25.5, 100.0),
        ([1, 2, 3, 100], 3, 100.0),
    ],
)
def test_next_weight_table_gives_following_step_or_none_when_done(
    steps: tuple[float, ...], current: float, expected: float | None
) -> None:
    assert next_weight(steps, current) == expected


@pytest.mark.parametrize(("weight", "index"), [(0, -1), (10, 0), (50, 1), (100, 2)])
def test_step_index_of_known_weight_is_its_position(weight: float, index: int) -> None:
    assert step_index(SPEC, weight) == index


@pytest.mark.parametrize("weight", [5, 30, 101, -10])
def test_step_index_of_unknown_weight_raises_naming_weight(weight: float) -> None:
    with pytest.raises(ValueError, match="weight"):
        step_index(SPEC, weight)


def test_next_weight_from_weight_off_schedule_raises() -> None:
    with pytest.raises(ValueError, match="weight must be 0 or one of the steps"):
        next_weight(SPEC, 20)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ((), "must not be empty"),
        ((10, 10, 100), "strictly increasing"),
        ((50, 10, 100), "strictly increasing"),
        ((0, 50, 100), r"steps\[0\] must be within \(0, 100\]"),
        ((-5, 100), r"steps\[0\] must be within"),
        ((10, 150), r"steps\[1\] must be within"),
        ((10, float("nan"), 100), r"steps\[1\] must be within"),
        ((10, 50), "last step must be 100"),
    ],
)
def test_invalid_schedule_raises_value_error_naming_problem(
    steps: tuple[float, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        validate_steps(steps)
    with pytest.raises(ValueError, match=message):
        next_weight(steps, 0)


def test_validate_steps_returns_float_tuple() -> None:
    assert validate_steps([10, 50, 100]) == SPEC


def test_next_phase_walks_the_judged_weights_then_promotes() -> None:
    from driftloop.rollout.steps import next_phase

    assert next_phase((10.0, 50.0), 0.0) == (0, 10.0)  # canary: 10 -> 50 -> promote
    assert next_phase((10.0, 50.0), 10.0) == (1, 50.0)
    assert next_phase((10.0, 50.0), 50.0) is None
    assert next_phase((100.0,), 0.0) == (0, 100.0)  # blue-green: 100 judged, then promote
    assert next_phase((100.0,), 100.0) is None
    assert next_phase((30.0,), 0.0) == (0, 30.0)  # A/B at 30 %
    assert next_phase((30.0,), 30.0) is None
