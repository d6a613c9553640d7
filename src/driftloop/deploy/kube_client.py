"""The Kubernetes client's configuration, shared by the istio router and the loop's lease."""

from __future__ import annotations

__all__ = ["load_kube_configuration"]


def load_kube_configuration(context: str | None) -> None:
    """Configure the Kubernetes client: in-cluster, else the kubeconfig (``context``).
    Raises the client's ``ConfigException`` or ``OSError``; callers name the fix."""
    from kubernetes import config
    from kubernetes.config.config_exception import ConfigException

    if context is not None:
        config.load_kube_config(context=context)  # type: ignore[no-untyped-call]
        return
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
