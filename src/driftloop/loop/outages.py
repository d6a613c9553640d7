"""The loop's outages: what it probes before each turn (the server's route table, the
registry, the online feature store), and the ``paused`` / ``resumed`` events it records
while one of them is unreachable (one of each per outage, however long it lasts)."""

from __future__ import annotations

import logging

from driftloop.clock import Clock
from driftloop.errors import (
    DriftloopError,
    FeatureStoreError,
    MetricsUnavailable,
    RegistryError,
    RouterError,
)
from driftloop.features.store import FeatureStore
from driftloop.loop.store import LoopEvent, LoopStore
from driftloop.project import Project
from driftloop.registry.base import ModelRegistry
from driftloop.rollout.router import TrafficRouter

__all__ = ["OUTAGES", "Outages"]

logger = logging.getLogger("driftloop.loop")

OUTAGES = (MetricsUnavailable, RouterError, RegistryError, FeatureStoreError)
_DEPENDENCY = {
    MetricsUnavailable: "server",
    RouterError: "server",
    RegistryError: "registry",
    FeatureStoreError: "feature_store",
}


class Outages:
    """Probes the loop's dependencies and records when it pauses and resumes."""

    def __init__(
        self,
        project: Project,
        registry: ModelRegistry,
        router: TrafficRouter,
        store: LoopStore,
        clock: Clock,
    ) -> None:
        self.project = project
        self.registry = registry
        self.router = router
        self.store = store
        self.clock = clock
        self.model = registry.model_name
        self._features: FeatureStore | None = None

    def probe(self) -> None:
        """Raise the first outage: the server (its route table), the registry, the online
        feature store."""
        self.router.current()
        self.registry.check_reachable()
        if self._features is None:
            self._features = FeatureStore(self.project)
        self._features.check_reachable()

    def paused(self) -> LoopEvent | None:
        """The ``paused`` event if the loop is paused now (read from the log: a restarted
        controller knows it too)."""
        last = self.store.events(self.model, kinds=("paused", "resumed"), limit=1)
        return last[0] if last and last[0].kind == "paused" else None

    def pause(self, exc: DriftloopError) -> None:
        dependency = next(
            (name for kind, name in _DEPENDENCY.items() if isinstance(exc, kind)), "server"
        )
        current = self.paused()
        if current is not None and current.evidence.get("dependency") == dependency:
            logger.debug("loop still paused: the %s is unreachable: %s", dependency, exc)
            return  # one event and one warning per outage, however long it lasts
        logger.warning("loop paused: the %s is unreachable: %s", dependency, exc)
        self.store.record(
            self.model,
            self.clock.now(),
            "paused",
            f"paused: the {dependency.replace('_', ' ')} is unreachable: {exc}",
            evidence={"dependency": dependency, "error": str(exc)},
        )

    def resume(self) -> None:
        current = self.paused()
        if current is None:
            return
        now = self.clock.now()
        minutes = (now - current.at).total_seconds() / 60.0
        dependency = str(current.evidence.get("dependency", "dependency")).replace("_", " ")
        logger.warning("loop resumed: the %s answers again after %.0f min", dependency, minutes)
        self.store.record(
            self.model,
            now,
            "resumed",
            f"resumed: the {dependency} answers again after {minutes:.0f} min",
            evidence={"paused_at": current.at, "minutes": minutes},
        )
