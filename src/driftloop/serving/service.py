"""The serving core, apart from HTTP: loaded versions, the route table, admin actions.

The state (route table plus loaded models) is one immutable object replaced whole, so
a request that read it keeps a consistent view while a reload or weight change happens.
Loading a version runs before the swap; a version that fails to load is refused and the
current state keeps serving.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from driftloop.clock import Clock, WallClock
from driftloop.errors import ModelLoadError, PredictionError, RequestError
from driftloop.registry import aliases
from driftloop.registry.base import CHALLENGER, CHAMPION, LoadedModel, ModelRegistry
from driftloop.serving.routing import RouteTable, resolve_routes
from driftloop.statistics.profile import ReferenceProfile

__all__ = ["ModelService", "RoutingStore", "ServedModel", "ServingState", "predict"]


@dataclass(frozen=True)
class ServedModel:
    """A loaded version and what the server needs to know about it."""

    version: str
    model: LoadedModel
    profile: ReferenceProfile | None
    reference_error: float = float("nan")  # holdout value of the accuracy metric
    reference_rate: float = float("nan")  # the holdout's positive rate (classification)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return self.model.feature_names


@dataclass(frozen=True)
class ServingState:
    """Route table plus the loaded versions it names."""

    routes: RouteTable
    models: Mapping[str, ServedModel]


class RoutingStore:
    """The last committed route table, kept in the project's state database."""

    _SCHEMA = (
        "CREATE TABLE IF NOT EXISTS routing (model TEXT PRIMARY KEY, champion TEXT NOT NULL, "
        "challenger TEXT, challenger_weight REAL NOT NULL, shadow INTEGER NOT NULL, "
        "updated_at TEXT NOT NULL)"
    )

    def __init__(self, path: Path, model: str) -> None:
        self.path = path
        self.model = model
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(path, timeout=30)) as db, db:
            db.execute(self._SCHEMA)

    def save(self, routes: RouteTable, at: str) -> None:
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            db.execute(
                "INSERT OR REPLACE INTO routing VALUES (?, ?, ?, ?, ?, ?)",
                (
                    self.model,
                    routes.champion,
                    routes.challenger,
                    routes.challenger_weight,
                    int(routes.shadow),
                    at,
                ),
            )

    def load(self) -> RouteTable | None:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            row = db.execute(
                "SELECT champion, challenger, challenger_weight, shadow FROM routing "
                "WHERE model = ?",
                (self.model,),
            ).fetchone()
        if row is None:
            return None
        return RouteTable(row[0], row[1], float(row[2]), bool(row[3]))


class ModelService:
    """Versions resolved from the registry, routed by weight, changed by admin calls."""

    def __init__(
        self,
        registry: ModelRegistry,
        routing_store: RoutingStore,
        clock: Clock | None = None,
        pin_version: str | None = None,
        accuracy_metric: str = "wape",
    ) -> None:
        self.registry = registry
        self.routing_store = routing_store
        self.clock = clock or WallClock()
        self.pin_version = pin_version
        self.accuracy_metric = accuracy_metric  # whose holdout value the live monitor needs
        self._state: ServingState | None = None
        self._admin = threading.Lock()  # one admin change at a time; requests never wait

    @property
    def model_name(self) -> str:
        return self.registry.model_name

    @property
    def state(self) -> ServingState:
        state = self._state
        if state is None:
            raise RequestError("no champion is loaded yet: train one with `driftloop train`", 503)
        return state

    @property
    def ready(self) -> bool:
        return self._state is not None

    def _load(self, version: str, cache: Mapping[str, ServedModel]) -> ServedModel:
        if version in cache:
            return cache[version]
        try:
            model = self.registry.load_model(version)
            profile = self.registry.load_profile(version)
            metrics = self.registry.get(version).metrics
            reference = metrics.get(f"holdout_{self.accuracy_metric}", float("nan"))
            rate = metrics.get("holdout_positive_rate", float("nan"))
        except Exception as exc:
            raise ModelLoadError(
                f"version {version} failed to load ({exc}); the versions already loaded keep "
                "serving"
            ) from exc
        return ServedModel(version, model, profile, float(reference), float(rate))

    def _swap(self, routes: RouteTable, models: Mapping[str, ServedModel]) -> ServingState:
        kept = {v: models[v] for v in routes.versions()}
        state = ServingState(routes, kept)
        self._state = state  # one reference assignment: requests see old or new, whole
        self.routing_store.save(routes, self.clock.now().isoformat())
        return state

    def reload(
        self,
        *,
        keep_champion_alone: bool = False,
        preloaded: Mapping[str, ServedModel] | None = None,
    ) -> ServingState:
        """Resolve champion and challenger from the registry and load what is new.

        A version that fails to load is refused and the current state keeps serving.
        With ``keep_champion_alone`` (start-up, nothing serving yet) a challenger that
        fails to load is left out and the champion serves alone; the error is raised
        afterwards as ``ModelLoadError`` with the state already swapped in.
        A pinned service (``pin_version``) serves that version alone and ignores the aliases:
        on a cluster each version has its own Deployment and the mesh splits the traffic.
        """
        if self.pin_version is not None:
            return self._reload_pinned(self.pin_version)
        with self._admin:
            champion = self.registry.alias(CHAMPION)
            if champion is None:
                raise ModelLoadError(
                    f"model {self.model_name!r} has no champion: run `driftloop train` first"
                )
            challenger = self.registry.alias(CHALLENGER)
            cache = {**(self._state.models if self._state else {}), **(preloaded or {})}
            models = {champion.version: self._load(champion.version, cache)}
            ch_version = challenger.version if challenger else None
            if ch_version == champion.version:
                ch_version = None
            deferred: ModelLoadError | None = None
            if ch_version is not None:
                try:
                    models[ch_version] = self._load(ch_version, cache)
                except ModelLoadError as exc:
                    if not keep_champion_alone:
                        raise
                    deferred, ch_version = exc, None
            previous = self._state.routes if self._state else self.routing_store.load()
            state = self._swap(resolve_routes(champion.version, ch_version, previous), models)
            if deferred is not None:
                raise deferred
            return state

    def _reload_pinned(self, version: str) -> ServingState:
        with self._admin:
            cache = dict(self._state.models) if self._state else {}
            return self._swap(RouteTable(version), {version: self._load(version, cache)})

    def set_weights(self, challenger_weight: float, shadow: bool | None = None) -> ServingState:
        """Send ``challenger_weight`` percent of entities to the challenger."""
        with self._admin:
            state = self.state
            if state.routes.challenger is None:
                raise RequestError(
                    "there is no challenger to send traffic to: register one and reload", 409
                )
            try:
                routes = state.routes.with_weight(challenger_weight, shadow)
            except ValueError as exc:
                raise RequestError(str(exc), 422) from None
            return self._swap(routes, state.models)

    def promote(self, actor: str, reason: str, version: str | None = None) -> ServingState:
        """Make ``version`` (default: the challenger) champion in the registry and serve it.

        The admin API promotes what it is asked to, a version its gate rejected included."""
        state = self.state
        target = version or state.routes.challenger
        if target is None:
            raise RequestError("no version given and there is no challenger to promote", 409)
        aliases.check_promotion(self.registry, target, force=True)  # unknown: 404
        # Load first: a version that cannot load (tampered, missing) leaves the registry as is.
        loaded = self._load(target, state.models)
        aliases.promote(self.registry, target, actor=actor, reason=reason)
        return self.reload(preloaded={target: loaded})

    def rollback(self, actor: str, reason: str) -> ServingState:
        """Put the previous champion back (registry and serving)."""
        target = aliases.rollback_target(self.registry)
        loaded = self._load(target, self._state.models if self._state else {})
        aliases.rollback(self.registry, target, actor=actor, reason=reason)
        return self.reload(preloaded={target: loaded})


def predict(served: ServedModel, x: np.ndarray) -> np.ndarray:
    """Run one version; any failure becomes PredictionError naming the version."""
    try:
        out = served.model.predict_array(x)
    except Exception as exc:
        raise PredictionError(
            f"model v{served.version} failed: {type(exc).__name__}: {exc}", served.version
        ) from exc
    if out.shape[0] != x.shape[0]:
        raise PredictionError(
            f"model v{served.version} returned {out.shape[0]} predictions for {x.shape[0]} rows",
            served.version,
        )
    return out
