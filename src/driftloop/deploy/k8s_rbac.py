"""The loop controller's identity on a cluster: a ServiceAccount and the least RBAC it
needs to hold its Lease through the Kubernetes API (``loop.lease_backend: kubernetes``).

The Role lets it read and update its own Lease by name and create Leases in the namespace
(``create`` cannot be limited by name: the API server checks it before the object
exists). Nothing else: the controller's other work goes through the model server's admin
API, or through the Istio router's own grants when ``rollout.router`` is istio.
"""

from __future__ import annotations

from typing import Any

from driftloop.config import ProjectConfig
from driftloop.deploy.target import DeployTarget, resource_name

__all__ = [
    "controller_name",
    "controller_role",
    "controller_role_binding",
    "controller_service_account",
]

_COMPONENT = "loop-controller"


def loop_lease_name(config: ProjectConfig) -> str:
    """The controller's Lease, ServiceAccount, Role and RoleBinding: one name."""
    return f"{resource_name(config)}-loop"


def controller_name(target: DeployTarget) -> str:
    return loop_lease_name(target.config)


def _meta(target: DeployTarget) -> dict[str, Any]:
    labels = {
        "app": target.name,
        "app.kubernetes.io/name": target.name,
        "app.kubernetes.io/component": _COMPONENT,
        "app.kubernetes.io/part-of": "driftloop",
        "app.kubernetes.io/managed-by": "driftloop",
    }
    return {"name": controller_name(target), "namespace": target.namespace, "labels": labels}


def controller_service_account(target: DeployTarget) -> dict[str, Any]:
    """The identity the controller's pod runs as (``serviceAccountName``)."""
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(target)}


def controller_role(target: DeployTarget) -> dict[str, Any]:
    """get and update on the controller's own Lease; create on Leases in the namespace."""
    group, resource = "coordination.k8s.io", "leases"
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _meta(target),
        "rules": [
            {
                "apiGroups": [group],
                "resources": [resource],
                "resourceNames": [controller_name(target)],
                "verbs": ["get", "update"],
            },
            {"apiGroups": [group], "resources": [resource], "verbs": ["create"]},
        ],
    }


def controller_role_binding(target: DeployTarget) -> dict[str, Any]:
    """The Role, granted to the ServiceAccount."""
    name = controller_name(target)
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _meta(target),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": target.namespace}],
    }
