"""Running on a cluster: Kubernetes, Istio and Prometheus manifests and a Grafana dashboard.

``k8s`` and ``dashboard`` render plain dicts (pure); ``write`` writes them; ``plan`` reads
the registry and ties it together for ``driftloop deploy k8s``; ``kube_client`` configures
the Kubernetes client for the istio router and the loop's lease.
"""

from __future__ import annotations

from driftloop.deploy.dashboard import dashboard_panels, dashboard_queries, grafana_dashboard
from driftloop.deploy.k8s import DeployTarget, ServedVersions, render_manifests
from driftloop.deploy.plan import DeployResult, cluster_warnings, deploy_k8s, served_versions

__all__ = [
    "DeployResult",
    "DeployTarget",
    "ServedVersions",
    "cluster_warnings",
    "dashboard_panels",
    "dashboard_queries",
    "deploy_k8s",
    "grafana_dashboard",
    "render_manifests",
    "served_versions",
]
