"""Everything one server process holds: service, logs, metrics, features, settings."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import anyio
import numpy as np
import pandas as pd

from driftloop.clock import Clock, WallClock
from driftloop.config import ServingConfig
from driftloop.errors import DriftloopError, ModelNotFound, RegistryError
from driftloop.features.layout import project_layout
from driftloop.monitoring.assess import ACCURACY_METRICS
from driftloop.monitoring.monitor import open_day_store, registry_info
from driftloop.monitoring.predlog import FEATURE_PREFIX, feedback_dir, predictions_dir
from driftloop.project import Project
from driftloop.registry.base import ModelRegistry
from driftloop.serving.live_monitor import LiveMonitor
from driftloop.serving.metrics import ServerMetrics
from driftloop.serving.predlog import (
    PredictionBatch,
    encode_predictions,
)
from driftloop.serving.rows import OnlineRowCache
from driftloop.serving.service import ModelService, RoutingStore, ServedModel, predict
from driftloop.storage.quarantine import QuarantineCollector
from driftloop.storage.segments import SegmentLog

__all__ = [
    "FEATURE_PREFIX",
    "PredictionBatch",
    "ServerContext",
    "encode_predictions",
]

logger = logging.getLogger("driftloop.serving")


class ServerContext:
    """State of one server; the HTTP layer only parses, calls this, and answers."""

    def __init__(
        self,
        project: Project,
        registry: ModelRegistry,
        clock: Clock | None = None,
        admin_token: str | None = None,
        settings: ServingConfig | None = None,
    ) -> None:
        self.project = project
        self.settings = settings or project.config.serving
        self.accuracy_metric = ACCURACY_METRICS[project.config.training.task]
        self.clock = clock or WallClock()
        self.registry = registry
        self.service = ModelService(
            registry,
            RoutingStore(project.state_dir / "state.db", registry.model_name),
            self.clock,
            pin_version=self.settings.pin_version,
            accuracy_metric=self.accuracy_metric,
        )
        self.admin_token = admin_token or self.settings.resolved_admin_token()
        self.layout = project_layout(project)
        self.entity_keys: tuple[str, ...] = tuple(self.layout.entity_keys)
        self.nullable_features = self.layout.nullable_features
        self.request_time_features = self.layout.request_time_features
        fields = frozenset(self.layout.request_fields)
        sendable = self.request_time_features | fields
        # What an entity item may hold: (request fields, numeric ones, sendable, allowed).
        self.entity_fields = (
            fields,
            self.layout.numeric_fields,
            sendable,
            frozenset({*self.entity_keys, "request_id", *sendable}),
        )
        self.live = LiveMonitor(
            registry.model_name,
            project.config.monitoring,
            self.accuracy_metric,
            open_day_store(project, self.entity_keys),
            registry_info(registry, self.accuracy_metric),
        )
        self.metrics = self._new_metrics(None)
        interval, rows = self.settings.log_flush_interval_s, self.settings.log_flush_rows
        self.predictions = SegmentLog(
            predictions_dir(project.state_dir),
            interval,
            rows,
            self.clock,
            encode=self._encode,
            rows_of=len,
            after_write=self.live.fold_predictions,
        )
        self.feedback = SegmentLog(
            feedback_dir(project.state_dir),
            interval,
            rows,
            self.clock,
            after_write=self.live.fold_feedback,
        )
        self._feature_store: Any = None
        self._store_lock = threading.Lock()
        self.load_error: str | None = None
        self._probe_lock = threading.Lock()
        # Real-time features: an entity's state is read, stepped and pushed as one unit.
        self.activity_lock = threading.Lock()
        self._probed: tuple[datetime, dict[str, str | None]] | None = None
        self._row_cache: OnlineRowCache | None = None

    @property
    def row_cache(self) -> OnlineRowCache:
        """The entity endpoint's online rows as vectors (see serving/rows.py)."""
        if self._row_cache is None:
            stored = [n for names in self.layout.views().values() for n in names]
            sent = sorted(self.request_time_features - set(stored))
            self._row_cache = OnlineRowCache(self.entity_keys, [*stored, *sent])
        return self._row_cache

    @property
    def model_name(self) -> str:
        return self.registry.model_name

    def __repr__(self) -> str:  # never the admin token
        admin = "on" if self.admin_token else "off"
        return f"ServerContext({self.model_name!r}, registry={self.registry!r}, admin={admin})"

    def _new_metrics(self, prediction_buckets: Sequence[float] | None) -> ServerMetrics:
        metrics = ServerMetrics(self.model_name, prediction_buckets)
        metrics.registry.register(self.live)
        metrics.registry.register(QuarantineCollector(self.project.state_dir))
        return metrics

    def _encode(self, batches: Sequence[PredictionBatch]) -> pd.DataFrame:
        """Runs in the log flusher (the written segment is then folded for monitoring)."""
        return encode_predictions(batches, self.layout.entity_types)

    def _set_references(self) -> None:
        for served in self.service.state.models.values():
            if served.profile is not None:
                self.live.set_reference(
                    served.version, served.profile, served.reference_error, served.reference_rate
                )

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> None:
        self.predictions.start()
        self.feedback.start()

    def stop(self) -> None:
        self.predictions.stop()
        self.feedback.stop()

    def initial_load(self) -> None:
        """Load champion (and challenger); a failure leaves the server live but not ready."""
        try:
            self.service.reload(keep_champion_alone=True)
            self.load_error = None
        except Exception as exc:
            self.load_error = str(exc)
            logger.error("model loading: %s", exc)
            if not self.service.ready:
                return
        state = self.service.state
        champion = state.models[state.routes.champion]
        if champion.profile is not None and champion.profile.prediction.edges:
            self.metrics = self._new_metrics(champion.profile.prediction.edges)
        self._set_references()
        self.metrics.set_routes(state.routes)
        self.warm_features()

    def warm_features(self) -> None:
        """Open Feast and read the online store once, at start: importing and opening Feast
        takes seconds, which the first ``/v1/predict`` used to wait for. A project whose
        features were never applied skips it; a failure is logged and the entity endpoint
        reports it when asked (the store is opened again then)."""
        if not self.project.feast_registry_path.exists():
            return
        try:
            self.feature_store().check_reachable()
        except Exception as exc:
            logger.warning("the feature store did not open at start: %s", exc)

    def flush_logs(self) -> int:
        return self.predictions.flush() + self.feedback.flush()

    def dependencies(self) -> dict[str, str | None]:
        """Registry and online store: None when reachable, else why not. Probed at most
        every ``serving.dependency_check_interval_s``, one probe at a time (blocking: call
        it off the event loop)."""
        with self._probe_lock:
            now = self.clock.now()
            if self._probed is not None:
                at, found = self._probed
                if (now - at).total_seconds() < self.settings.dependency_check_interval_s:
                    return found
            found = {
                "registry": _probe(self.registry.check_reachable),
                "feature_store": _probe(self.feature_store().check_reachable),
            }
            for name, error in found.items():
                if error is not None:
                    logger.warning("dependency %s is unreachable: %s", name, error)
            self._probed = (now, found)
            return found

    def health(self, dependencies: dict[str, str | None] | None = None) -> dict[str, Any]:
        found = dependencies or {}
        return {
            "model": self.model_name,
            "load_error": self.load_error,
            "log_error": self.predictions.last_error or self.feedback.last_error,
            "degraded": sorted(name for name, error in found.items() if error is not None),
            "dependencies": {name: error or "ok" for name, error in found.items()},
        }

    def log_exception(self, exc: BaseException, request_id: str) -> None:
        logger.error("request %s failed", request_id, exc_info=exc)

    # -- models ------------------------------------------------------------------------
    def served(self, version: str) -> ServedModel:
        state = self.service.state
        if version not in state.models:
            raise ModelNotFound(
                f"version {version!r} is not being served; serving "
                f"{', '.join('v' + v for v in state.routes.versions())}"
            )
        return state.models[version]

    async def run_model(self, served: ServedModel, x: np.ndarray) -> np.ndarray:
        """Small batches on the event loop (microseconds), large ones in a worker thread."""
        if x.shape[0] <= self.settings.inline_batch_rows:
            return predict(served, x)
        return await anyio.to_thread.run_sync(predict, served, x)

    def feature_store(self) -> Any:
        """The one FeatureStore of this server (requests in worker threads may ask at once:
        two would each open Feast and rewrite its registry under the other's lookups)."""
        if self._feature_store is None:
            from driftloop.features.store import FeatureStore

            with self._store_lock:
                if self._feature_store is None:
                    self._feature_store = FeatureStore(self.project)
        return self._feature_store

    # -- logging -----------------------------------------------------------------------
    def log_rows(
        self,
        *,
        request_ids: Sequence[str],
        served: ServedModel,
        route: str,
        endpoint: str,
        x: np.ndarray,
        preds: np.ndarray,
        seconds: float,
        event_time: datetime | None = None,
        entities: Sequence[tuple[Any, ...]] | None = None,
        feature_times: Sequence[Any] | np.ndarray | None = None,
        overrides: Sequence[Sequence[str]] | None = None,
        outside_ttl: Sequence[bool] | None = None,
    ) -> None:
        now = self.clock.now()
        batch = PredictionBatch(
            served_at=now,
            event_time=event_time or now,
            request_ids=request_ids,
            endpoint=endpoint,
            model=self.model_name,
            version=served.version,
            route=route,
            feature_names=served.feature_names,
            x=x,
            preds=preds,
            latency_ms=seconds * 1000.0,
            entities=entities,
            feature_times=feature_times,
            overrides=[",".join(sorted(o)) for o in overrides] if overrides else None,
            outside_ttl=outside_ttl,
        )
        self.predictions.append_one(batch, len(preds))

    def record(
        self,
        *,
        request_ids: Sequence[str],
        served: ServedModel,
        route: str,
        endpoint: str,
        x: np.ndarray,
        preds: np.ndarray,
        seconds: float,
        **logged: Any,
    ) -> None:
        """Log the answered rows (``logged``: the entity fields of :meth:`log_rows`) and
        count them in the server's metrics."""
        self.log_rows(
            request_ids=request_ids,
            served=served,
            route=route,
            endpoint=endpoint,
            x=x,
            preds=preds,
            seconds=seconds,
            **logged,
        )
        self.metrics.observe(served.version, route, endpoint, preds, seconds)

    def shadow(
        self,
        challenger: ServedModel,
        features: Callable[[], np.ndarray],
        champion_preds: np.ndarray,
        *,
        request_ids: Sequence[str],
        endpoint: str,
        **logged: Any,
    ) -> None:
        """Score the challenger on rows the champion answered (``features`` builds its
        matrix): log its answers on the shadow route and how far they are from the
        champion's; a failure is counted and logged, never raised or returned."""
        started = time.perf_counter()
        try:
            x = features()
            preds = predict(challenger, x)
        except Exception as exc:
            self.metrics.shadow.labels(self.model_name, challenger.version, "error").inc()
            logger.warning("shadow v%s failed on %s: %s", challenger.version, request_ids[0], exc)
            return
        self.log_rows(
            request_ids=request_ids,
            served=challenger,
            route="shadow",
            endpoint=endpoint,
            x=x,
            preds=preds,
            seconds=time.perf_counter() - started,
            **logged,
        )
        self.metrics.observe_shadow(challenger.version, preds, champion_preds)

    # -- admin -------------------------------------------------------------------------
    def routes_payload(self) -> dict[str, Any]:
        routes = self.service.state.routes
        return {
            "model": self.model_name,
            "champion": routes.champion,
            "challenger": routes.challenger,
            "challenger_weight": routes.challenger_weight,
            "shadow": routes.shadow,
        }

    def _after_change(self) -> None:
        self._set_references()
        self.metrics.set_routes(self.service.state.routes)

    def admin_weights(self, weight: float, shadow: bool | None) -> None:
        self.service.set_weights(weight, shadow)
        self._after_change()

    def admin_reload(self) -> None:
        try:
            self.service.reload()
        except RegistryError as exc:
            if not self.service.ready:
                raise
            serving = ", ".join("v" + v for v in self.service.state.routes.versions())
            raise RegistryError(f"reload refused, {serving} keep serving: {exc}") from exc
        self.load_error = None
        self._after_change()

    def admin_promote(self, version: str | None, reason: str) -> None:
        self.service.promote("server admin API", reason, None if version is None else str(version))
        self._after_change()

    def admin_rollback(self, reason: str) -> None:
        self.service.rollback("server admin API", reason)
        self._after_change()


def _probe(check: Any) -> str | None:
    """None if ``check()`` passes, else its error for people."""
    try:
        check()
    except DriftloopError as exc:
        return str(exc)
    return None
