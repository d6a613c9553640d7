"""Kubernetes, Istio and Prometheus Operator manifests for a project (pure: dicts out).

What is rendered, per served version (the champion and, when there is one, the
challenger): a Deployment whose pods run ``driftloop serve`` pinned to that one version
(``DRIFTLOOP__SERVING__PIN_VERSION``), and a Service selecting only its pods. Shared: a
ConfigMap with the project's ``driftloop.yaml`` (the admin token is never written), a
Service over every version's pods that Istio routes through, a DestinationRule with one
subset per version, a VirtualService carrying the canary weights (and a mirror to the
challenger in shadow mode), a ServiceMonitor and a PrometheusRule with the alerting rules
of ``monitoring.alerts``, and the loop controller's Lease with the ServiceAccount, Role
and RoleBinding that let the controller hold it (``driftloop.deploy.k8s_rbac``). The
admin token comes from a Secret the operator creates; only its name and key appear here.

The traffic split lives in the VirtualService: each pod serves its version alone, so its
own ``driftloop_route_weight`` reads 100 and the split is read from request rates.
"""

from __future__ import annotations

import math
from typing import Any

from driftloop.deploy.k8s_rbac import (
    controller_name,
    controller_role,
    controller_role_binding,
    controller_service_account,
)
from driftloop.deploy.target import (
    DeployTarget,
    ServedVersions,
    default_image,
    resource_name,
    subset_name,
)
from driftloop.monitoring.alerts import AlertThresholds, alert_rules
from driftloop.monitoring.assess import ACCURACY_METRICS

__all__ = [
    "ALIAS_ANNOTATION",
    "CONFIG_MOUNT_DIR",
    "LIVE_PATH",
    "METRICS_PATH",
    "PIN_ENV",
    "READY_PATH",
    "DeployTarget",
    "ServedVersions",
    "config_map",
    "controller_lease",
    "default_image",
    "deployment",
    "destination_rule",
    "prometheus_rule",
    "render_manifests",
    "resource_name",
    "service_monitor",
    "shared_service",
    "subset_name",
    "version_service",
    "virtual_service",
]

PIN_ENV = "DRIFTLOOP__SERVING__PIN_VERSION"
TOKEN_ENV = "DRIFTLOOP_ADMIN_TOKEN"
READY_PATH = "/v2/health/ready"
LIVE_PATH = "/v2/health/live"
METRICS_PATH = "/metrics"
CONFIG_MOUNT_DIR = "/srv/driftloop"
ALIAS_ANNOTATION = "driftloop.io/alias"
_JOB_LABEL = "driftloop.io/job"
_SCRAPE_LABEL = "driftloop.io/scrape"
_PORT_NAME = "http"  # Istio picks the protocol from the port name


def _meta(target: DeployTarget, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": target.namespace, "labels": labels}


def _labels(target: DeployTarget, version: str | None = None) -> dict[str, str]:
    labels = {
        "app": target.name,
        "app.kubernetes.io/name": target.name,
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/part-of": "driftloop",
        "app.kubernetes.io/managed-by": "driftloop",
    }
    if version is not None:
        labels["version"] = subset_name(version)
    return labels


def _probe(path: str, port: int, period_s: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period_s,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _container(target: DeployTarget, version: str) -> dict[str, Any]:
    d = target.config.deploy
    secret = d.admin_secret
    return {
        "name": "server",
        "image": target.image,
        "imagePullPolicy": d.image_pull_policy,
        "command": ["driftloop", "serve", "--host", "0.0.0.0", "--port", str(d.container_port)],
        "workingDir": CONFIG_MOUNT_DIR,
        "ports": [{"name": _PORT_NAME, "containerPort": d.container_port, "protocol": "TCP"}],
        "env": [
            {"name": PIN_ENV, "value": version},
            {
                "name": TOKEN_ENV,
                "valueFrom": {
                    "secretKeyRef": {
                        "name": secret.name,
                        "key": secret.key,
                        "optional": secret.optional,
                    }
                },
            },
            {"name": "MLFLOW_DISABLE_TELEMETRY", "value": "true"},
            {"name": "FEAST_USAGE", "value": "False"},
        ],
        "resources": d.resources.model_dump(),
        # Loading a model can take a while: liveness waits for the startup probe.
        "startupProbe": _probe(LIVE_PATH, d.container_port, 5, 60),
        "readinessProbe": _probe(READY_PATH, d.container_port, 5, 3),
        "livenessProbe": _probe(LIVE_PATH, d.container_port, 10, 3),
        "volumeMounts": [
            {
                "name": "config",
                "mountPath": f"{CONFIG_MOUNT_DIR}/driftloop.yaml",
                "subPath": "driftloop.yaml",
                "readOnly": True,
            },
            {"name": "state", "mountPath": f"{CONFIG_MOUNT_DIR}/.driftloop"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "securityContext": {"allowPrivilegeEscalation": False},
    }


def deployment(target: DeployTarget, alias: str, version: str) -> dict[str, Any]:
    """The Deployment serving ``version`` alone, scraped through pod annotations too."""
    d = target.config.deploy
    labels = _labels(target, version)
    selector = {"app": target.name, "version": subset_name(version)}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            **_meta(target, f"{target.name}-{subset_name(version)}", labels),
            "annotations": {ALIAS_ANNOTATION: alias},
        },
        "spec": {
            "replicas": d.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(d.container_port),
                        "prometheus.io/path": METRICS_PATH,
                    },
                },
                "spec": {
                    # uvicorn finishes in-flight requests and flushes the logs within 30 s.
                    "terminationGracePeriodSeconds": 45,
                    "containers": [_container(target, version)],
                    "volumes": [
                        {"name": "config", "configMap": {"name": f"{target.name}-config"}},
                        {"name": "state", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def _service(
    target: DeployTarget, name: str, labels: dict[str, str], selector: dict[str, str]
) -> dict[str, Any]:
    d = target.config.deploy
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(target, name, labels),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {
                    "name": _PORT_NAME,
                    "port": d.service_port,
                    "targetPort": _PORT_NAME,
                    "protocol": "TCP",
                }
            ],
        },
    }


def shared_service(target: DeployTarget) -> dict[str, Any]:
    """The Service over every version's pods: the host Istio routes and splits."""
    return _service(target, target.name, _labels(target), {"app": target.name})


def version_service(target: DeployTarget, version: str) -> dict[str, Any]:
    """A Service over one version's pods: direct access, and what the ServiceMonitor scrapes."""
    labels = {
        **_labels(target, version),
        _SCRAPE_LABEL: "true",
        _JOB_LABEL: target.config.deploy.job,
    }
    selector = {"app": target.name, "version": subset_name(version)}
    return _service(target, f"{target.name}-{subset_name(version)}", labels, selector)


def config_map(target: DeployTarget) -> dict[str, Any]:
    """The project's ``driftloop.yaml`` for the pods (rendered without the admin token)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(target, f"{target.name}-config", _labels(target)),
        "data": {"driftloop.yaml": target.config_yaml},
    }


def _host(target: DeployTarget) -> str:
    return f"{target.name}.{target.namespace}.svc.cluster.local"


def virtual_service(target: DeployTarget) -> dict[str, Any]:
    """Canary weights (champion 100 - w, challenger w) and, in shadow mode, a mirror."""
    d = target.config.deploy
    host = _host(target)
    route = [
        {
            "destination": {
                "host": host,
                "subset": subset_name(version),
                "port": {"number": d.service_port},
            },
            "weight": weight,
        }
        for version, weight in target.versions.weights().items()
    ]
    http: dict[str, Any] = {"name": "canary", "route": route}
    challenger = target.versions.challenger
    if target.versions.shadow and challenger is not None:
        http["mirror"] = {
            "host": host,
            "subset": subset_name(challenger),
            "port": {"number": d.service_port},
        }
        http["mirrorPercentage"] = {"value": 100.0}
    spec: dict[str, Any] = {"hosts": list(d.hosts) or [host], "http": [http]}
    if d.gateways:  # listing gateways drops the implicit "mesh" unless it is listed too
        spec["gateways"] = list(d.gateways)
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": _meta(target, target.name, _labels(target)),
        "spec": spec,
    }


def destination_rule(target: DeployTarget) -> dict[str, Any]:
    """One subset per served version, selected by the pods' ``version`` label."""
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": _meta(target, target.name, _labels(target)),
        "spec": {
            "host": _host(target),
            "subsets": [
                {"name": subset_name(v), "labels": {"version": subset_name(v)}}
                for _, v in target.versions.aliases()
            ],
        },
    }


def _monitoring_labels(target: DeployTarget) -> dict[str, str]:
    return {**_labels(target), **target.config.deploy.monitoring_labels}


def service_monitor(target: DeployTarget) -> dict[str, Any]:
    """Prometheus Operator scrape config: every version's Service, job label from config."""
    d = target.config.deploy
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _meta(target, target.name, _monitoring_labels(target)),
        "spec": {
            "jobLabel": _JOB_LABEL,
            "selector": {"matchLabels": {"app": target.name, _SCRAPE_LABEL: "true"}},
            "endpoints": [
                {"port": _PORT_NAME, "path": METRICS_PATH, "interval": d.scrape_interval}
            ],
        },
    }


def prometheus_rule(target: DeployTarget) -> dict[str, Any]:
    """The alerting rules of ``monitoring.alerts`` for this project's thresholds."""
    thresholds = AlertThresholds.from_monitoring(
        target.config.monitoring,
        accuracy_metric=ACCURACY_METRICS[target.config.training.task],
    )
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _meta(target, target.name, _monitoring_labels(target)),
        "spec": alert_rules(thresholds, job=target.config.deploy.job),
    }


def controller_lease(target: DeployTarget) -> dict[str, Any]:
    """The loop controller's Lease (coordination.k8s.io/v1): one active controller per
    project, renewed within ``loop.lease_s`` (docs/reliability.md)."""
    labels = {**_labels(target), "app.kubernetes.io/component": "loop-controller"}
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": _meta(target, controller_name(target), labels),
        "spec": {"leaseDurationSeconds": math.ceil(target.config.loop.lease_s)},
    }


def render_manifests(target: DeployTarget) -> dict[str, list[dict[str, Any]]]:
    """Every manifest by kind, in the order ``kubectl apply`` should create them."""
    served = target.versions.aliases()
    return {
        "ConfigMap": [config_map(target)],
        "Service": [shared_service(target), *(version_service(target, v) for _, v in served)],
        "Deployment": [deployment(target, alias, v) for alias, v in served],
        "DestinationRule": [destination_rule(target)],
        "VirtualService": [virtual_service(target)],
        "ServiceMonitor": [service_monitor(target)],
        "PrometheusRule": [prometheus_rule(target)],
        "Lease": [controller_lease(target)],
        "ServiceAccount": [controller_service_account(target)],
        "Role": [controller_role(target)],
        "RoleBinding": [controller_role_binding(target)],
    }
