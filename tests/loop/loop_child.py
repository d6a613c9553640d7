"""A loop controller in a process of its own, for the kill tests (``python -m``).

``check ROOT URL AT``: one turn of the loop at the simulated time AT, whose assessment
is given: the champion's accuracy degraded in a window that ends a week before AT (the
signal behind a retrain; monitoring itself is tested elsewhere). Everything after the
assessment is the real controller: the policy, training, the gate, the registry, the
rollout through the server at URL, the event log.

``run ROOT URL LEASE_S``: ``LoopController.run`` on wall time under the project's lease,
printing what it waits for, for the lease tests.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

from driftloop.clock import Clock, SimulatedClock
from driftloop.loop.controller import LoopController
from driftloop.loop.policy import Signals
from driftloop.project import Project
from driftloop.registry import CHAMPION, open_registry
from driftloop.rollout.factory import open_controller


class DegradedLoop(LoopController):
    """The real controller, told that the champion's accuracy degraded."""

    def assess(self, now: datetime) -> Signals:
        champion = self.registry.alias(CHAMPION)
        end = now.date() - timedelta(days=6)
        return Signals(
            at=now,
            champion=None if champion is None else champion.version,
            window=(end - timedelta(days=7), end),
            rows=2000,
            enough_data=True,
            drifted_features=(),
            max_feature_psi=0.0,
            prediction_drift=False,
            prediction_kl=0.0,
            accuracy_state="degraded",
            accuracy_ratio=2.0,
            label_coverage=1.0,
            wape=0.6,
        )


def controller(root: str, url: str, clock: Clock) -> DegradedLoop:
    project = Project.load(Path(root))
    registry = open_registry(project, clock)
    rollouts = open_controller(project, server=url, clock=clock)
    return DegradedLoop(project, registry, rollouts, clock)


def main(argv: list[str]) -> int:
    command, root, url, at = argv[1:5]
    if command == "check":
        turn = controller(root, url, SimulatedClock(datetime.fromisoformat(at))).check()
        print(f"{turn.decision.action}: {turn.decision.reason}", flush=True)
        return 0
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
