"""An Istio traffic router: the canary's share set on a VirtualService's route weights.

Each registry version runs as its own workload, selected by a DestinationRule subset named
by ``subset_template`` (``v{version}``: ``v1``, ``v2``). The router edits one HTTP route of
a ``networking.istio.io/v1`` VirtualService through the Kubernetes API:

* the champion's subset first, weight ``100 - w``; the challenger's second, weight ``w``
  (kept at weight 0 while there is a challenger, so the route table can be read back);
* shadow: ``mirror`` to the challenger's subset with ``mirrorPercentage`` 100.

Writes are read-modify-replace with the ``resourceVersion`` read (optimistic concurrency):
a concurrent edit makes the API server answer 409 Conflict, and the router re-reads and
retries, at most ``conflict_retries`` times, then raises :class:`RouterError`. Nothing is
written when the route already says what is asked (idempotent). Everything else in the
object (other routes, matches, retries, ports, labels) is kept as it was.

``reload`` resolves champion and challenger from the registry like a server's reload does
(the challenger's weight kept when it is the same version, else 0); it cannot see whether
the version's pods run: deploy the subset's workload before the rollout starts.

The shadow phase's judge reads the server's own shadow counters (answers and divergence
from the champion's, counted by a server in shadow mode); traffic mirrored by Envoy does
not produce them, so with this router keep ``rollout.shadow`` off.

The tests drive it against an in-memory implementation of the two API calls with
``resourceVersion`` semantics; no Kubernetes cluster or Istio runs in them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from driftloop.config import IstioConfig
from driftloop.deploy.kube_client import load_kube_configuration
from driftloop.errors import RouterError
from driftloop.registry.base import CHALLENGER, CHAMPION, ModelRegistry
from driftloop.serving.routing import RouteTable, resolve_routes

__all__ = ["GROUP", "PLURAL", "VERSION", "CustomObjects", "IstioRouter", "kube_api"]

GROUP, VERSION, PLURAL = "networking.istio.io", "v1", "virtualservices"


class CustomObjects(Protocol):
    """The two calls of ``kubernetes.client.CustomObjectsApi`` the router uses."""

    def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> Any: ...

    def replace_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Any
    ) -> Any: ...


def kube_api(context: str | None = None) -> CustomObjects:
    """A ``CustomObjectsApi``: in-cluster config, else the kubeconfig (``context``)."""
    from kubernetes import client
    from kubernetes.config.config_exception import ConfigException

    try:
        load_kube_configuration(context)
    except (ConfigException, OSError) as exc:
        raise RouterError(
            f"no Kubernetes configuration for the istio router ({exc}); run inside the "
            "cluster or set KUBECONFIG / rollout.istio.kube_context"
        ) from None
    api: CustomObjects = client.CustomObjectsApi()
    return api


class IstioRouter:
    """Route weights of one HTTP route of a VirtualService (see the module docstring)."""

    def __init__(
        self,
        api: CustomObjects,
        registry: ModelRegistry,
        *,
        namespace: str = "default",
        name: str = "driftloop",
        route: str | None = None,
        host: str | None = None,
        subset_template: str = "v{version}",
        conflict_retries: int = 5,
    ) -> None:
        self.api = api
        self.registry = registry
        self.namespace = namespace
        self.name = name
        self.route_name = route
        self.host = host
        self.prefix, _, self.suffix = subset_template.partition("{version}")
        self.conflict_retries = conflict_retries

    @classmethod
    def from_config(
        cls, cfg: IstioConfig, registry: ModelRegistry, api: CustomObjects | None = None
    ) -> IstioRouter:
        return cls(
            api if api is not None else kube_api(cfg.kube_context),
            registry,
            namespace=cfg.namespace or "default",
            name=cfg.virtualservice or "driftloop",
            route=cfg.route,
            host=cfg.host,
            subset_template=cfg.subset_template,
            conflict_retries=cfg.conflict_retries,
        )

    @property
    def where(self) -> str:
        return f"VirtualService {self.namespace}/{self.name}"

    # -- the protocol ---------------------------------------------------------------------
    def current(self) -> RouteTable:
        obj = self._get()
        return self._parse(self._route(obj)[1])

    def set_weight(self, weight: float, shadow: bool = False) -> RouteTable:
        if float(weight) != round(weight):
            raise RouterError(
                f"Istio route weights are whole percents; the challenger cannot get {weight}%"
            )

        def change(live: RouteTable) -> RouteTable:
            if live.challenger is None:
                raise RouterError(f"{self.where} has no challenger to send traffic to")
            try:
                return live.with_weight(float(round(weight)), shadow)
            except ValueError as exc:
                raise RouterError(str(exc)) from None

        return self._update(change)

    def reload(self) -> RouteTable:
        def resolve(live: RouteTable) -> RouteTable:
            champion = self.registry.alias(CHAMPION)
            if champion is None:
                raise RouterError(f"model {self.registry.model_name!r} has no champion")
            challenger = self.registry.alias(CHALLENGER)
            return resolve_routes(
                champion.version, challenger.version if challenger else None, live
            )

        return self._update(resolve)

    def __repr__(self) -> str:
        return f"IstioRouter({self.namespace!r}, {self.name!r})"

    # -- reading and writing --------------------------------------------------------------
    def _update(self, change: Callable[[RouteTable], RouteTable]) -> RouteTable:
        """Read, change, replace with the read resourceVersion; re-read on 409 Conflict."""
        for _attempt in range(self.conflict_retries + 1):
            obj = self._get()
            index, route = self._route(obj)
            live = self._parse(route)
            want = change(live)
            new_route = self._render(route, want)
            if new_route == route:
                return live
            if not obj.get("metadata", {}).get("resourceVersion"):
                raise RouterError(f"{self.where} came without metadata.resourceVersion")
            body = copy.deepcopy(obj)
            body["spec"]["http"][index] = new_route
            try:
                self.api.replace_namespaced_custom_object(
                    group=GROUP,
                    version=VERSION,
                    namespace=self.namespace,
                    plural=PLURAL,
                    name=self.name,
                    body=body,
                )
            except ApiException as exc:
                if exc.status == 409:
                    continue  # edited since we read it: read again
                raise self._api_error("replace", exc) from None
            except Exception as exc:  # urllib3 and socket errors of an unreachable API
                raise RouterError(
                    f"cannot reach the Kubernetes API to replace {self.where}: {exc}"
                ) from None
            return want
        raise RouterError(
            f"{self.where} was edited concurrently {self.conflict_retries + 1} times in a row "
            "(HTTP 409 Conflict on every replace); another controller or operator keeps "
            "changing it: stop the other writer, then resume the rollout"
        )

    def _get(self) -> dict[str, Any]:
        try:
            obj = self.api.get_namespaced_custom_object(
                group=GROUP,
                version=VERSION,
                namespace=self.namespace,
                plural=PLURAL,
                name=self.name,
            )
        except ApiException as exc:
            raise self._api_error("read", exc) from None
        except Exception as exc:
            raise RouterError(
                f"cannot reach the Kubernetes API to read {self.where}: {exc}"
            ) from None
        if not isinstance(obj, dict):
            raise RouterError(f"{self.where}: unexpected answer {obj!r}")
        return obj

    def _api_error(self, doing: str, exc: ApiException) -> RouterError:
        hints = {
            404: "it does not exist (apply it first)",
            403: "the rollout's service account may not do that",
        }
        hint = hints.get(exc.status or 0, "")
        detail = f"HTTP {exc.status} {exc.reason}" + (f": {hint}" if hint else "")
        return RouterError(f"cannot {doing} {self.where}: {detail}")

    def _route(self, obj: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        routes = obj.get("spec", {}).get("http") or []
        for i, route in enumerate(routes):
            if self.route_name is None or route.get("name") == self.route_name:
                return i, route
        which = "an HTTP route" if self.route_name is None else f"HTTP route {self.route_name!r}"
        raise RouterError(f"{self.where} has no {which}")

    # -- route <-> route table ------------------------------------------------------------
    def subset(self, version: str) -> str:
        return f"{self.prefix}{version}{self.suffix}"

    def _version(self, subset: Any) -> str:
        text = str(subset or "")
        named = text.startswith(self.prefix) and text.endswith(self.suffix)
        if not named or len(text) <= len(self.prefix) + len(self.suffix):
            raise RouterError(
                f"{self.where}: subset {subset!r} is not named {self.prefix}{{version}}"
                f"{self.suffix} (rollout.istio.subset_template)"
            )
        return text[len(self.prefix) : len(text) - len(self.suffix)]

    def _parse(self, route: dict[str, Any]) -> RouteTable:
        dests = route.get("route") or []
        if not 1 <= len(dests) <= 2:
            raise RouterError(
                f"{self.where}: the route has {len(dests)} destinations; the istio router "
                "manages one (champion) or two (champion, challenger)"
            )
        champion = self._version(dests[0].get("destination", {}).get("subset"))
        challenger = None
        weight = 0.0
        if len(dests) == 2:
            challenger = self._version(dests[1].get("destination", {}).get("subset"))
            weight = float(dests[1].get("weight", 0))
            total = weight + float(dests[0].get("weight", 0))
            if total != 100:
                raise RouterError(f"{self.where}: route weights sum to {total:g}, not 100")
        mirror = route.get("mirror")
        shadow = False
        if mirror is not None:
            mirrored = self._version(mirror.get("subset"))
            if challenger is None:
                challenger = mirrored
            shadow = mirrored == challenger
        try:
            return RouteTable(champion, challenger, weight, shadow)
        except ValueError as exc:
            raise RouterError(f"{self.where}: {exc}") from None

    def _render(self, route: dict[str, Any], table: RouteTable) -> dict[str, Any]:
        dests = route.get("route") or []
        first = dests[0].get("destination", {}) if dests else {}
        host = self.host or first.get("host")
        if not host:
            raise RouterError(f"{self.where}: no destination host; set rollout.istio.host")

        def destination(version: str) -> dict[str, Any]:
            out: dict[str, Any] = {"host": host, "subset": self.subset(version)}
            if "port" in first:
                out["port"] = copy.deepcopy(first["port"])
            return out

        new = copy.deepcopy(route)
        w = round(table.challenger_weight)
        new["route"] = [{"destination": destination(table.champion), "weight": 100 - w}]
        if table.challenger is not None:
            new["route"].append({"destination": destination(table.challenger), "weight": w})
        new.pop("mirror", None)
        new.pop("mirrorPercentage", None)
        if table.shadow and table.challenger is not None:
            new["mirror"] = destination(table.challenger)
            new["mirrorPercentage"] = {"value": 100.0}
        if len(dests) == 1 and table.challenger is None and "weight" not in dests[0]:
            new["route"][0].pop("weight")  # a lone destination without a weight stays so
        return new
