"""A rollout controller for a project: its registry, state store, server and metrics."""

from __future__ import annotations

from typing import Any

from driftloop.clock import Clock
from driftloop.errors import RouterError
from driftloop.project import Project
from driftloop.registry.base import ModelRegistry
from driftloop.rollout.controller import RolloutController
from driftloop.rollout.outcomes import LogOutcomeSource
from driftloop.rollout.router import ServerAdminRouter, TrafficRouter
from driftloop.rollout.sources import (
    MetricsSource,
    PrometheusMetricsSource,
    ServerMetricsSource,
)
from driftloop.rollout.store import RolloutStore

__all__ = ["open_controller", "open_router", "server_url"]


def server_url(project: Project, override: str | None = None) -> str:
    """Where the project's server listens: ``override``, ``rollout.server_url`` or serving."""
    if override:
        return override.rstrip("/")
    cfg = project.config
    if cfg.rollout.server_url:
        return cfg.rollout.server_url.rstrip("/")
    host = cfg.serving.host if cfg.serving.host not in ("0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{cfg.serving.port}"


def open_router(
    project: Project, registry: ModelRegistry, url: str, kube_api: Any = None
) -> TrafficRouter:
    """``rollout.router``: the server's admin API at ``url``, or an Istio VirtualService
    (``kube_api``: a ``CustomObjectsApi``, by default from the cluster's configuration)."""
    cfg = project.config.rollout
    if cfg.router == "istio":
        try:
            from driftloop.rollout.istio import IstioRouter
        except ImportError as exc:
            raise RouterError(
                f"rollout.router is istio but the Kubernetes client is missing ({exc}): "
                "pip install 'driftloop[cluster]'"
            ) from None
        from driftloop.deploy.target import resource_name

        # Unset names are those `driftloop deploy k8s` rendered for this project.
        istio = cfg.istio.model_copy(
            update={
                "namespace": cfg.istio.namespace or project.config.deploy.namespace,
                "virtualservice": cfg.istio.virtualservice or resource_name(project.config),
            }
        )
        return IstioRouter.from_config(istio, registry, kube_api)
    return ServerAdminRouter(url, project.config.serving.resolved_admin_token())


def open_controller(
    project: Project,
    *,
    server: str | None = None,
    prometheus: str | None = None,
    clock: Clock | None = None,
    kube_api: Any = None,
) -> RolloutController:
    """The controller that moves the project's traffic (``rollout.router``) from its metrics.

    With the istio router the metrics still come from the server's ``/metrics`` at
    ``server`` or, across a cluster, from Prometheus (``rollout.prometheus_url``)."""
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
        router=open_router(project, registry, url, kube_api),
        metrics=metrics,
        store=RolloutStore(project.state_dir / "state.db"),
        config=cfg,
        clock=clock,
        outcomes=LogOutcomeSource(
            project.state_dir, cfg.outcomes.business_metric, project.config.training.task
        ),
    )
