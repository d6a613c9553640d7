"""A project with two registered versions, and seeded traffic through real server metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.conftest import copy_with_registry

from driftloop.clock import SimulatedClock
from driftloop.config import RolloutConfig
from driftloop.rollout.controller import RolloutController
from driftloop.rollout.metrics import Snapshot
from driftloop.rollout.router import NoopRouter
from driftloop.rollout.sources import parse_server_metrics
from driftloop.rollout.store import Rollout, RolloutStore
from driftloop.serving.metrics import ServerMetrics
from driftloop.serving.routing import choose

FAST: dict[str, Any] = {
    "check_interval_s": 10.0,
    "min_requests": 300,
    "guard_min_requests": 150,
    "min_duration_s": 60.0,
    "max_duration_s": 900.0,
    "p99_slack_ms": 0.0,  # the seeded traffic answers in ~2 ms: judge it without slack
}


@pytest.fixture
def rollout_project(two_versions: Any, tmp_path: Path) -> Any:
    """A private copy of ``two_versions`` with its registry (artifacts shared, read-only)."""
    return copy_with_registry(two_versions, tmp_path / "shop")


class RenderedMetrics:
    """The metrics source reading a real ServerMetrics' exposition, as /metrics serves it."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    def snapshot(self) -> Snapshot:
        return parse_server_metrics(self.metrics.render().decode(), self.metrics.model)


@dataclass
class Traffic:
    """Seeded requests routed by the router's live table into real server metrics.

    Stable answers in lognormal time (median 2 ms), fails with ``stable_errors``; the
    challenger fails with ``canary_errors``, is ``canary_slowdown`` times slower and its
    predictions are multiplied by ``canary_shift``.
    """

    router: NoopRouter
    metrics: ServerMetrics
    per_tick: int = 400
    stable_errors: float = 0.005
    canary_errors: float = 0.005
    canary_slowdown: float = 1.0
    canary_shift: float = 1.0
    seed: int = 0
    served: int = 0
    canary_seen: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def __call__(self, rollout: Rollout | None = None) -> None:
        table = self.router.current()
        model = self.metrics.model
        for _ in range(self.per_tick):
            key = f"entity-{self.served}"
            self.served += 1
            alias, version = choose(table, key)
            canary = alias == "challenger"
            fail = self.rng.random() < (self.canary_errors if canary else self.stable_errors)
            seconds = float(self.rng.lognormal(np.log(0.002), 0.3))
            pred = float(self.rng.gamma(4.0, 5.0))
            if canary:
                seconds *= self.canary_slowdown
                pred *= self.canary_shift
            if fail:
                self.metrics.errors.labels(model, version, "model_error").inc()
            else:
                self.metrics.observe(version, alias, "v2", np.array([pred]), seconds)
            if table.shadow and table.challenger and not canary:
                shadow = pred * self.canary_shift * float(self.rng.normal(1.0, 0.02))
                self.metrics.observe_shadow(table.challenger, np.array([shadow]), np.array([pred]))
        if table.challenger_weight > 0 and table.challenger is not None:
            self.canary_seen.append(table.challenger_weight)


@dataclass
class Harness:
    project: Any
    registry: Any
    router: NoopRouter
    metrics: ServerMetrics
    store: RolloutStore
    clock: SimulatedClock
    config: RolloutConfig

    def controller(self, router: Any = None, registry: Any = None, **kw: Any) -> RolloutController:
        return RolloutController(
            registry=registry or self.registry,
            router=router or self.router,
            metrics=RenderedMetrics(self.metrics),
            store=self.store,
            config=self.config,
            clock=self.clock,
            **kw,
        )

    def traffic(self, **kw: Any) -> Traffic:
        return Traffic(self.router, self.metrics, **kw)


def make_harness(project: Any, **overrides: Any) -> Harness:
    from driftloop.registry import open_registry

    registry = open_registry(project)
    config = RolloutConfig(**{**FAST, **overrides})
    return Harness(
        project,
        registry,
        NoopRouter(registry),
        ServerMetrics(registry.model_name),
        RolloutStore(project.state_dir / "state.db"),
        SimulatedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)),
        config,
    )


@pytest.fixture
def harness(rollout_project: Any) -> Harness:
    return make_harness(rollout_project)
