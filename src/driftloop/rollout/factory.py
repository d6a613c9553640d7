"""A rollout controller for a project: its registry, state store, server and metrics."""

from __future__ import annotations

from driftloop.clock import Clock
from driftloop.project import Project
from driftloop.rollout.controller import RolloutController
from driftloop.rollout.outcomes import LogOutcomeSource
from driftloop.rollout.router import ServerAdminRouter
from driftloop.rollout.sources import (
    MetricsSource,
    PrometheusMetricsSource,
    ServerMetricsSource,
)
from driftloop.rollout.store import RolloutStore

__all__ = ["open_controller", "server_url"]


def server_url(project: Project, override: str | None = None) -> str:
    """Where the project's server listens: ``override``, ``rollout.server_url`` or serving."""
    if override:
        return override.rstrip("/")
    cfg = project.config
    if cfg.rollout.server_url:
        return cfg.rollout.server_url.rstrip("/")
    host = cfg.serving.host if cfg.serving.host not in ("0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{cfg.serving.port}"


def open_controller(
    project: Project,
    *,
    server: str | None = None,
    prometheus: str | None = None,
    clock: Clock | None = None,
) -> RolloutController:
    """The controller that drives the project's server (admin API) from its metrics."""
    from driftloop.registry import open_registry

    cfg = project.config.rollout
    registry = open_registry(project, clock)
    url = server_url(project, server)
    metrics: MetricsSource
    prom = prometheus or cfg.prometheus_url
    if prom:
        metrics = PrometheusMetricsSource(prom, registry.model_name, cfg.prometheus_selector)
    else:
        metrics = ServerMetricsSource(url, registry.model_name)
    return RolloutController(
        registry=registry,
        router=ServerAdminRouter(url, project.config.serving.resolved_admin_token()),
        metrics=metrics,
        store=RolloutStore(project.state_dir / "state.db"),
        config=cfg,
        clock=clock,
        outcomes=LogOutcomeSource(project.state_dir, cfg.outcomes.business_metric),
    )
