"""The rollout state machine on a real registry, real server metrics and seeded traffic."""

from __future__ import annotations

from typing import Any

import pytest
from tests.rollout.conftest import Harness, make_harness

from driftloop.errors import RolloutError
from driftloop.registry.base import CHALLENGER, CHAMPION


def _states(h: Harness, rollout_id: int) -> list[tuple[str, str]]:
    return [(e.from_state, e.to_state) for e in h.store.events(rollout_id)]


def _weights(h: Harness) -> list[float]:
    return [w for kind, w, _ in h.router.calls if kind == "weight"]


def test_good_canary_walks_10_50_and_is_promoted_with_evidence(harness: Harness) -> None:
    ctl = harness.controller()
    rollout = ctl.start("2")
    traffic = harness.traffic(seed=1)
    final = ctl.run(rollout.id, on_tick=traffic)

    assert final.state == "promoted" and final.applied
    assert _states(harness, rollout.id) == [
        ("", "pending"),
        ("pending", "step 1 (10%)"),
        ("step 1 (10%)", "step 2 (50%)"),
        ("step 2 (50%)", "promoted"),
    ]
    assert _weights(harness) == [10.0, 50.0]
    assert harness.registry.alias(CHAMPION).version == "2"
    assert harness.registry.alias(CHALLENGER) is None
    assert harness.router.current().champion == "2"
    promoted = harness.store.events(rollout.id)[-1]
    assert promoted.evidence["canary_requests"]["value"] >= 300
    assert promoted.evidence["error_rate_test"]["passed"] is True
    assert promoted.evidence["elapsed_s"]["value"] >= 60
    moves = harness.registry.alias_history(CHAMPION)
    assert moves[-1].actor == f"driftloop rollout #{rollout.id}"


def test_canary_failing_5_percent_is_rolled_back_in_the_first_step(harness: Harness) -> None:
    ctl = harness.controller()
    rollout = ctl.start("2")
    traffic = harness.traffic(seed=2, stable_errors=0.01, canary_errors=0.05)
    final = ctl.run(rollout.id, on_tick=traffic)

    assert final.state == "rolled_back"
    assert _states(harness, rollout.id)[-1] == ("step 1 (10%)", "rolled back")
    assert max(traffic.canary_seen) == 10.0
    assert _weights(harness) == [10.0, 0.0]
    assert "error rate" in final.reason
    assert harness.registry.alias(CHAMPION).version == "1"
    assert harness.registry.alias(CHALLENGER) is None
    assert harness.router.current().challenger is None
    clears = [m for m in harness.registry.alias_history(CHALLENGER) if m.kind == "clear"]
    assert clears[-1].reason == final.reason


def test_slow_canary_is_rolled_back_by_the_latency_checks(harness: Harness) -> None:
    ctl = harness.controller()
    rollout = ctl.start("2")
    final = ctl.run(rollout.id, on_tick=harness.traffic(seed=3, canary_slowdown=1.3))
    assert final.state == "rolled_back"
    assert "latency" in final.reason or "p99" in final.reason


def test_shifted_predictions_are_rolled_back_on_kl(harness: Harness) -> None:
    ctl = harness.controller()
    rollout = ctl.start("2")
    final = ctl.run(rollout.id, on_tick=harness.traffic(seed=4, canary_shift=1.6))
    assert final.state == "rolled_back"
    assert "KL" in final.reason


def test_no_traffic_waits_then_rolls_back_at_the_deadline(harness: Harness) -> None:
    ctl = harness.controller()
    rollout = ctl.start("2")
    ticks: list[str] = []
    final = ctl.run(rollout.id, on_tick=lambda r: ticks.append(r.state))
    assert final.state == "rolled_back"
    assert "deadline" in final.reason
    assert ticks.count("step") >= 900 / 10  # it waited the whole step first


def test_blue_green_switches_all_traffic_at_once(harness: Harness) -> None:
    ctl = harness.controller()
    warm = harness.traffic(seed=5)
    warm()  # the stable's record before the switch
    rollout = ctl.start("2", "blue-green")
    final = ctl.run(rollout.id, on_tick=harness.traffic(seed=6))
    assert final.state == "promoted"
    assert _weights(harness) == [100.0]
    assert _states(harness, rollout.id)[1] == ("pending", "step 1 (100%)")


def test_blue_green_switches_back_instantly_on_errors(harness: Harness) -> None:
    ctl = harness.controller()
    harness.traffic(seed=7)()
    rollout = ctl.start("2", "blue-green")
    final = ctl.run(rollout.id, on_tick=harness.traffic(seed=8, canary_errors=0.06))
    assert final.state == "rolled_back"
    assert _weights(harness) == [100.0, 0.0]
    assert harness.router.current().champion == "1"


def test_shadow_phase_precedes_the_first_step(rollout_project: Any) -> None:
    h = make_harness(
        rollout_project, shadow={"enabled": True, "min_answers": 200, "min_agreement": 0.9}
    )
    ctl = h.controller()
    rollout = ctl.start("2")
    final = ctl.run(rollout.id, on_tick=h.traffic(seed=9))
    assert final.state == "promoted"
    assert _states(h, rollout.id)[1:3] == [("pending", "shadow"), ("shadow", "step 1 (10%)")]
    shadow_done = h.store.events(rollout.id)[2]
    assert shadow_done.evidence["agreement"]["value"] > 0.9
    assert next(c for c in h.router.calls if c[0] == "weight") == ("weight", 0.0, True)


def test_shadow_disagreement_rolls_back_before_any_user_sees_it(rollout_project: Any) -> None:
    h = make_harness(
        rollout_project, shadow={"enabled": True, "min_answers": 200, "min_agreement": 0.9}
    )
    ctl = h.controller()
    rollout = ctl.start("2")
    traffic = h.traffic(seed=10, canary_shift=1.5)
    final = ctl.run(rollout.id, on_tick=traffic)
    assert final.state == "rolled_back"
    assert "agreement" in final.reason
    assert traffic.canary_seen == []  # never above weight 0


def test_abort_from_another_process_stops_the_canary(harness: Harness) -> None:
    ctl = harness.controller()
    rollout = ctl.start("2")
    ctl.tick(rollout.id)
    assert harness.router.current().challenger_weight == 10.0
    other = harness.controller()
    aborted = other.abort(rollout.id, "operator says no")
    assert aborted.state == "aborted" and aborted.applied
    assert harness.router.current().challenger_weight == 0.0
    assert ctl.tick(rollout.id).state == "aborted"  # the first process sees it and stops
    with pytest.raises(RolloutError, match="already ended"):
        other.abort(rollout.id)


@pytest.mark.parametrize(
    ("version", "message"),
    [("1", "already the champion"), ("99", "99")],
)
def test_start_refuses_bad_versions(harness: Harness, version: str, message: str) -> None:
    with pytest.raises(Exception, match=message) as info:
        harness.controller().start(version)
    assert getattr(info.value, "exit_code", None) == 2


def test_second_rollout_is_refused_while_one_runs_and_same_version_resumes(
    harness: Harness,
) -> None:
    ctl = harness.controller()
    first = ctl.start("2")
    assert ctl.start("2").id == first.id
    with pytest.raises(RolloutError, match="blue-green"):
        ctl.start("2", "blue-green")
    with pytest.raises(RolloutError, match="strategy"):
        ctl.start("2", "dark-launch")
