"""The ``deploy:`` section: what ``driftloop deploy k8s`` renders for a cluster."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DEFAULT_IMAGE_REPOSITORY",
    "AdminSecretConfig",
    "DeployConfig",
    "ResourceAmounts",
    "ResourcesConfig",
]

DEFAULT_IMAGE_REPOSITORY = "ghcr.io/driftloop/driftloop"
DEFAULT_CONTAINER_PORT = 8080
DEFAULT_SERVICE_PORT = 80
DEFAULT_SCRAPE_INTERVAL = "15s"
DEFAULT_JOB = "driftloop"

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T|Pi|P|Ei|E)?$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResourceAmounts(_Strict):
    """CPU and memory as Kubernetes quantities ("500m", "1Gi")."""

    cpu: str = Field(pattern=_QUANTITY)
    memory: str = Field(pattern=_QUANTITY)


class ResourcesConfig(_Strict):
    """Requests and limits of each model server container."""

    requests: ResourceAmounts = ResourceAmounts(cpu="500m", memory="1Gi")
    limits: ResourceAmounts = ResourceAmounts(cpu="2", memory="2Gi")


class AdminSecretConfig(_Strict):
    """The Kubernetes Secret holding the admin token; only its name is ever rendered."""

    name: str = Field("driftloop-admin-token", max_length=253, pattern=_DNS_SUBDOMAIN.pattern)
    key: str = Field("token", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")
    optional: bool = Field(
        False, description="start pods without the Secret (admin API off) instead of failing"
    )


class DeployConfig(_Strict):
    """Kubernetes manifests: namespace, image, replicas, resources, Istio and Prometheus."""

    namespace: str = Field("default", max_length=63, pattern=_DNS_LABEL)
    name: str | None = Field(
        None,
        max_length=50,
        pattern=_DNS_LABEL,
        description="base name of every resource; default the project name with - for _",
    )
    image: str | None = Field(
        None,
        min_length=1,
        description=f"server image; default {DEFAULT_IMAGE_REPOSITORY}:<driftloop version>",
    )
    image_pull_policy: str = Field("IfNotPresent", pattern=r"^(Always|IfNotPresent|Never)$")
    replicas: int = Field(2, ge=0, le=1000, description="pods per served version")
    resources: ResourcesConfig = ResourcesConfig()
    container_port: int = Field(DEFAULT_CONTAINER_PORT, ge=1, le=65535)
    service_port: int = Field(DEFAULT_SERVICE_PORT, ge=1, le=65535)
    hosts: tuple[str, ...] = Field(
        (), description="VirtualService hosts; default the Service's in-cluster name"
    )
    gateways: tuple[str, ...] = Field(
        (), description='Istio gateways, e.g. "istio-system/public"; empty: mesh traffic only'
    )
    admin_secret: AdminSecretConfig = AdminSecretConfig()
    scrape_interval: str = Field(DEFAULT_SCRAPE_INTERVAL, pattern=r"^[0-9]+(ms|s|m|h)$")
    job: str = Field(
        DEFAULT_JOB,
        pattern=r"^[a-zA-Z0-9_.-]{1,63}$",
        description="Prometheus job label of the scraped pods (alert rules filter up{job=...})",
    )
    monitoring_labels: dict[str, str] = Field(
        default_factory=dict,
        description="labels on the ServiceMonitor and PrometheusRule for the operator's "
        "selectors, e.g. {release: kube-prometheus-stack}",
    )

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for host in value:
            bare = host.removeprefix("*.")
            if host != "*" and not _DNS_SUBDOMAIN.match(bare):
                raise ValueError(f"host {host!r} is not a DNS name (or *, or *.domain)")
        return value
