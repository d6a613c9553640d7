"""The loop's lease as a Kubernetes ``Lease`` (``coordination.k8s.io/v1``), through the API.

The same contract as the lease in ``state.db`` (:mod:`driftloop.loop.lease`), kept where
every replica of a controller on a cluster sees it, the way client-go's leader election
keeps its lock: ``holderIdentity``, ``leaseDurationSeconds``, ``acquireTime``,
``renewTime`` and ``leaseTransitions`` in the Lease's spec; every write is a replace
carrying the ``resourceVersion`` that was read, so of two controllers writing at once the
API server accepts one and answers the other 409 Conflict (that one then reads who won).

Expiry is judged as client-go judges it: not on the holder's ``renewTime`` (another host's
clock) but on this controller's own clock, ``leaseDurationSeconds`` after it last saw the
Lease change (a new ``resourceVersion``). A holder that stops renewing therefore loses
the lease within ``lease_s`` of the moment a waiting controller saw its last renewal,
plus one poll; a controller that has just started waits up to ``lease_s`` first, whatever
``renewTime`` says. Clocks of different nodes need not agree. A graceful stop empties
``holderIdentity``, and an empty holder is free at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from driftloop.clock import Clock
from driftloop.config import ProjectConfig
from driftloop.deploy.kube_client import load_kube_configuration
from driftloop.errors import BackendError
from driftloop.loop.lease import LeaseHolder, RenewingLease

__all__ = [
    "CoordinationApi",
    "KubeLease",
    "coordination_api",
    "lease_name",
    "micro_time",
    "micro_time_client",
]


class CoordinationApi(Protocol):
    """The three calls of ``kubernetes.client.CoordinationV1Api`` the lease uses."""

    def read_namespaced_lease(self, name: str, namespace: str) -> Any: ...

    def create_namespaced_lease(self, namespace: str, body: Any) -> Any: ...

    def replace_namespaced_lease(self, name: str, namespace: str, body: Any) -> Any: ...


def coordination_api(context: str | None = None) -> CoordinationApi:
    """A ``CoordinationV1Api``: in-cluster config (the pod's ServiceAccount), else the
    kubeconfig (``context``)."""
    try:
        from kubernetes import client
        from kubernetes.config.config_exception import ConfigException
    except ImportError as exc:
        raise BackendError(
            f"loop.lease_backend is kubernetes but the Kubernetes client is missing ({exc}): "
            "pip install 'driftloop[cluster]'"
        ) from None
    try:
        load_kube_configuration(context)
    except (ConfigException, OSError) as exc:
        raise BackendError(
            f"no Kubernetes configuration for the loop's lease ({exc}): run inside the "
            "cluster, or set KUBECONFIG / loop.kube_context, or loop.lease_backend: state"
        ) from None
    api: CoordinationApi = client.CoordinationV1Api(micro_time_client())
    return api


def micro_time_client(configuration: Any = None) -> Any:
    """A ``kubernetes.client.ApiClient`` that writes every time as a ``MicroTime``.

    The client (v37) turns a Lease body into its model and writes times with
    ``isoformat()``, which leaves the fraction out when it is zero; the API server then
    refuses the ``MicroTime`` (400, ``cannot parse "+00:00" as ".000000"``). Six digits of
    fraction and ``Z`` parse as both ``MicroTime`` and ``Time``."""
    from kubernetes.client import ApiClient

    class MicroTimeClient(ApiClient):
        def sanitize_for_serialization(self, obj: Any) -> Any:
            if isinstance(obj, datetime):
                return micro_time(obj)
            return super().sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]

    return MicroTimeClient(configuration)


def lease_name(config: ProjectConfig) -> str:
    """The Lease `driftloop deploy k8s` renders for this project's controller."""
    from driftloop.deploy.k8s_rbac import loop_lease_name

    return loop_lease_name(config)


def micro_time(at: datetime) -> str:
    """A ``MicroTime`` as the API server writes it: UTC, six digits of fraction, ``Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _plain(obj: Any) -> dict[str, Any]:
    """A Lease as the API's JSON (camelCase keys), whether a client model or a dict."""
    if isinstance(obj, dict):
        return obj
    from kubernetes.client import ApiClient

    plain: dict[str, Any] = ApiClient().sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    return plain


@dataclass
class _Seen:
    """The Lease as last read: its version, holder and when this controller saw it change."""

    version: str
    holder: str
    acquired_at: datetime
    duration_s: float
    changed_at: datetime


class KubeLease(RenewingLease):
    """The Lease ``name`` in ``namespace``, held by ``holder`` (the pod's name and pid)."""

    def __init__(
        self,
        api: CoordinationApi,
        namespace: str,
        name: str,
        clock: Clock,
        lease_s: float,
        holder: str | None = None,
    ) -> None:
        super().__init__(clock, lease_s, holder)
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        self.api, self.namespace, self.name = api, namespace, name
        self._api_error = ApiException
        self._unreachable: tuple[type[Exception], ...] = (HTTPError, OSError)
        self._seen: _Seen | None = None
        self._duration = math.ceil(lease_s)

    def transient(self) -> tuple[type[Exception], ...]:
        return (BackendError, *self._unreachable)

    def _where(self) -> str:
        return f"Lease {self.namespace}/{self.name}"

    def _fail(self, exc: Exception, verb: str) -> BackendError:
        status = getattr(exc, "status", None)
        if status == 403:
            return BackendError(
                f"the controller may not {verb} {self._where()} (403 Forbidden): apply the "
                "ServiceAccount, Role and RoleBinding that `driftloop deploy k8s` renders and "
                "run the controller's pod as that ServiceAccount"
            )
        if status == 404:
            return BackendError(
                f"{self._where()}: namespace {self.namespace!r} not found (404); set "
                "deploy.namespace to the namespace the controller runs in"
            )
        return BackendError(f"{self._where()}: could not {verb} it ({status}: {exc})")

    def _read(self) -> dict[str, Any] | None:
        try:
            return _plain(self.api.read_namespaced_lease(self.name, self.namespace))
        except self._api_error as exc:
            if exc.status == 404:
                return None
            raise self._fail(exc, "read") from None
        except self._unreachable as exc:
            raise BackendError(f"{self._where()}: the API server did not answer ({exc})") from None

    def _observe(self, lease: dict[str, Any], now: datetime) -> _Seen:
        spec = lease.get("spec") or {}
        version = str(lease["metadata"]["resourceVersion"])
        seen = self._seen
        if seen is None or seen.version != version:
            seen = _Seen(
                version,
                spec.get("holderIdentity") or "",
                _parse_time(spec.get("acquireTime")) or now,
                float(spec.get("leaseDurationSeconds") or self.lease_s),
                now,
            )
            self._seen = seen
        return seen

    def current(self) -> LeaseHolder | None:
        """The Lease as last written (its holder possibly stopped), None if free."""
        lease = self._read()
        if lease is None:
            return None
        seen = self._observe(lease, self.clock.now())
        if not seen.holder:
            return None
        return LeaseHolder(
            seen.holder, seen.acquired_at, seen.changed_at + timedelta(seconds=seen.duration_s)
        )

    def _spec(self, acquired: datetime, now: datetime, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.holder,
            "leaseDurationSeconds": self._duration,
            "acquireTime": micro_time(acquired),
            "renewTime": micro_time(now),
            "leaseTransitions": transitions,
        }

    def acquire(self) -> LeaseHolder:
        """Take or renew the Lease if free, expired or ours; the holder either way (ours
        when ``holder`` equals this one's). A write that loses a race (409) reads again."""
        for _ in range(3):
            got = self._try_acquire()
            if got is not None:
                return got
        lease = self._read()
        if lease is None:
            raise BackendError(f"{self._where()}: created and deleted while taking it; retry")
        seen = self._observe(lease, self.clock.now())
        return LeaseHolder(
            seen.holder, seen.acquired_at, seen.changed_at + timedelta(seconds=seen.duration_s)
        )

    def _try_acquire(self) -> LeaseHolder | None:
        now = self.clock.now()
        expires = now + timedelta(seconds=self.lease_s)
        lease = self._read()
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": self._spec(now, now, 0),
            }
            if not self._write(lambda: self.api.create_namespaced_lease(self.namespace, body)):
                return None
            return LeaseHolder(self.holder, now, expires)
        seen = self._observe(lease, now)
        until = seen.changed_at + timedelta(seconds=seen.duration_s)
        if seen.holder and seen.holder != self.holder and until > now:
            return LeaseHolder(seen.holder, seen.acquired_at, until)
        ours = seen.holder == self.holder
        acquired = seen.acquired_at if ours else now
        transitions = int((lease.get("spec") or {}).get("leaseTransitions") or 0)
        spec = self._spec(acquired, now, transitions if ours else transitions + 1)
        body = self._replacing(lease, seen.version, spec)
        if not self._write(
            lambda: self.api.replace_namespaced_lease(self.name, self.namespace, body)
        ):
            return None
        taken_from = seen.holder if seen.holder and not ours else None
        return LeaseHolder(self.holder, acquired, expires, taken_from)

    def _replacing(self, lease: dict[str, Any], version: str, spec: dict[str, Any]) -> Any:
        """A replace of ``lease`` at ``version`` with ``spec``; its labels and annotations
        (those `deploy k8s` rendered) kept, the server's own fields left to the server."""
        meta = lease.get("metadata") or {}
        kept = {k: meta[k] for k in ("labels", "annotations") if meta.get(k)}
        metadata = {"name": self.name, "namespace": self.namespace, **kept}
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {**metadata, "resourceVersion": version},
            "spec": spec,
        }

    def _write(self, call: Any) -> bool:
        """Run a create or replace; False when another controller wrote first (409)."""
        try:
            written = _plain(call())
        except self._api_error as exc:
            if exc.status == 409:
                return False
            raise self._fail(exc, "write") from None
        except self._unreachable as exc:
            raise BackendError(f"{self._where()}: the API server did not answer ({exc})") from None
        self._seen = None
        self._observe(written, self.clock.now())
        return True

    def release(self) -> None:
        """Give the Lease up (a graceful stop): an empty holder, free at once."""
        try:
            lease = self._read()
            if lease is None:
                return
            now = self.clock.now()
            seen = self._observe(lease, now)
            if seen.holder != self.holder:
                return
            transitions = int((lease.get("spec") or {}).get("leaseTransitions") or 0)
            spec = {**self._spec(seen.acquired_at, now, transitions), "holderIdentity": None}
            body = self._replacing(lease, seen.version, spec)
            self.api.replace_namespaced_lease(self.name, self.namespace, body)
        except (BackendError, self._api_error, *self._unreachable):  # type: ignore[misc]
            pass  # it expires on its own
