"""Crash points: let a test kill this process (SIGKILL, as ``kill -9``) at a named point.

``DRIFTLOOP_CRASH_AT=<point>[#n]`` makes the process kill itself the n-th time (default
the first) it passes ``crash_point(<point>)``; nothing after the point runs, no handler,
no ``finally``. Unset (always, outside recovery tests) a crash point costs one dict lookup.
The points are listed in :data:`CRASH_POINTS`.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

__all__ = ["CRASH_ENV", "CRASH_POINTS", "crash_point"]

CRASH_ENV = "DRIFTLOOP_CRASH_AT"
CRASH_POINTS = (
    "rollout.created",  # the pending rollout is stored; nothing moved yet
    "rollout.challenger_set",  # challenger alias moved; the router has not loaded it
    "rollout.stored.step",  # a transition to a step is stored, its weight not set
    "rollout.stored.promoted",  # promotion decided and stored, no alias moved
    "rollout.stored.rolled_back",  # rollback decided and stored, the weight not reset
    "rollout.weight_set",  # the router has the step's weight, the store does not know it
    "rollout.judged",  # a step's window is judged, the verdict not acted on
    "aliases.champion_moved",  # promoted: champion alias moved, challenger not cleared
    "log.segment_written",  # a log segment's temporary file is written, not renamed
    "loop.retrain_recorded",  # retrain_started stored, nothing trained
    "loop.trained",  # the model is trained, not evaluated or gated
    "loop.gated",  # the gate's verdict is known, nothing registered
    "train.registered",  # the version is registered, its alias not moved
    "loop.registered",  # registered and aliased, the gate's outcome not in the loop's log
    "loop.gate_recorded",  # gate_passed stored, the rollout not started
    "loop.rollout_started",  # the rollout is started, rollout_started not stored
    "loop.rollout_recorded",  # rollout_started stored
)
_passed: Counter[str] = Counter()


def crash_point(name: str) -> None:
    """SIGKILL this process if ``DRIFTLOOP_CRASH_AT`` names ``name`` (and its count)."""
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    point, _, nth = spec.partition("#")
    if point != name:
        return
    _passed[name] += 1
    if _passed[name] == (int(nth) if nth else 1):
        os.kill(os.getpid(), signal.SIGKILL)
