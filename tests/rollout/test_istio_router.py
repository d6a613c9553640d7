"""The Istio router against an in-memory Kubernetes API; no cluster and no Istio run here.

:class:`MemoryCustomObjects` implements the two ``CustomObjectsApi`` calls the router uses
with the API server's optimistic concurrency: every stored object has a
``metadata.resourceVersion``, a replace must carry the current one or fail with a real
``ApiException`` 409 Conflict, and a successful replace bumps it. ``interfere`` makes
another writer edit the object between the router's read and its replace. Every body
the router sends is validated against Istio's VirtualService v1 JSON Schema
(``schemas/virtualservice_v1.json``) and its weights checked to sum to 100.

What this does not show: that a real API server accepts the object (admission webhooks,
Istio's own validation) and that Envoy then splits traffic by these weights.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from kubernetes.client.exceptions import ApiException
from tests.rollout.conftest import Harness, Traffic

from driftloop.config import IstioConfig, RolloutConfig
from driftloop.errors import RouterError
from driftloop.registry.base import CHALLENGER, CHAMPION
from driftloop.rollout.istio import GROUP, PLURAL, VERSION, IstioRouter
from driftloop.serving.routing import RouteTable

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "virtualservice_v1.json").read_text())
NS, NAME = "shop", "driftloop"
KEY = (GROUP, VERSION, NS, PLURAL, NAME)


def virtualservice(**route: Any) -> dict[str, Any]:
    """The VirtualService as an operator applies it: champion v1 only, plus other routes."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VirtualService",
        "metadata": {"name": NAME, "namespace": NS, "labels": {"app": "driftloop"}},
        "spec": {
            "hosts": ["driftloop.shop.svc.cluster.local"],
            "http": [
                {
                    "name": "health",
                    "match": [{"uri": {"prefix": "/healthz"}}],
                    "route": [{"destination": {"host": "driftloop", "subset": "v1"}}],
                },
                {
                    "name": "predict",
                    "timeout": "2s",
                    "retries": {"attempts": 2},
                    "route": [
                        {
                            "destination": {
                                "host": "driftloop",
                                "subset": "v1",
                                "port": {"number": 8000},
                            }
                        }
                    ],
                    **route,
                },
            ],
        },
    }


class MemoryCustomObjects:
    """``get`` / ``replace`` of namespaced custom objects with resourceVersion semantics."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.objects: dict[tuple[str, ...], dict[str, Any]] = {}
        self.version = 100
        self.calls: list[tuple[str, dict[str, Any] | None]] = []
        self.interfere = 0  # how many of the next replaces another writer gets in before
        self.other_edits = 0
        meta = obj["metadata"]
        self.key = (GROUP, VERSION, meta.get("namespace", NS), PLURAL, meta["name"])
        self._store(self.key, obj)

    def _store(self, key: tuple[str, ...], obj: dict[str, Any]) -> None:
        self.version += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.objects[key] = stored

    def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> Any:
        self.calls.append(("get", None))
        key = (group, version, namespace, plural, name)
        if key not in self.objects:
            raise ApiException(status=404, reason="Not Found")
        return copy.deepcopy(self.objects[key])

    def replace_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Any
    ) -> Any:
        self.calls.append(("replace", copy.deepcopy(body)))
        key = (group, version, namespace, plural, name)
        if key not in self.objects:
            raise ApiException(status=404, reason="Not Found")
        if self.interfere > 0:  # another writer replaces it first
            self.interfere -= 1
            self.other_edits += 1
            other = copy.deepcopy(self.objects[key])
            other["metadata"].setdefault("annotations", {})["edited-by"] = (
                f"other-{self.other_edits}"
            )
            self._store(key, other)
        current = self.objects[key]["metadata"]["resourceVersion"]
        if body.get("metadata", {}).get("resourceVersion") != current:
            raise ApiException(status=409, reason="Conflict")
        self._store(key, body)
        return copy.deepcopy(self.objects[key])

    @property
    def stored(self) -> dict[str, Any]:
        return self.objects[self.key]

    def replaces(self) -> list[dict[str, Any]]:
        return [body for kind, body in self.calls if kind == "replace" and body is not None]


def predict_route(obj: dict[str, Any]) -> dict[str, Any]:
    (route,) = [r for r in obj["spec"]["http"] if r.get("name") == "predict"]
    return route


def weights(obj: dict[str, Any]) -> dict[str, int]:
    route = predict_route(obj)
    return {d["destination"]["subset"]: d.get("weight", 100) for d in route["route"]}


def assert_valid(body: dict[str, Any]) -> None:
    jsonschema.validate(body, SCHEMA)
    for route in body["spec"]["http"]:
        if len(route["route"]) > 1:
            assert sum(d["weight"] for d in route["route"]) == 100


@pytest.fixture
def api() -> MemoryCustomObjects:
    return MemoryCustomObjects(virtualservice())


def make_router(api: MemoryCustomObjects, registry: Any, retries: int = 5) -> IstioRouter:
    cfg = IstioConfig(namespace=NS, virtualservice=NAME, route="predict", conflict_retries=retries)
    return IstioRouter.from_config(cfg, registry, api)


def with_challenger(harness: Harness) -> Any:
    harness.registry.move_alias(CHALLENGER, "2", "canary", "tests", "rollout begins")
    return harness.registry


def test_the_schema_accepts_the_operators_object_and_rejects_a_typo(
    api: MemoryCustomObjects,
) -> None:
    assert_valid(api.stored)
    bad = copy.deepcopy(api.stored)
    predict_route(bad)["route"][0]["wieght"] = 5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)


def test_current_reads_the_route_table(api: MemoryCustomObjects, harness: Harness) -> None:
    router = make_router(api, harness.registry)
    assert router.current() == RouteTable("1", None, 0.0, False)
    assert [kind for kind, _ in api.calls] == ["get"]


def test_reload_adds_the_challenger_at_0_then_weights_move_with_the_read_version(
    api: MemoryCustomObjects, harness: Harness
) -> None:
    router = make_router(api, with_challenger(harness))
    read = api.stored["metadata"]["resourceVersion"]
    assert router.reload() == RouteTable("1", "2", 0.0, False)
    (body,) = api.replaces()
    assert body["metadata"]["resourceVersion"] == read  # optimistic concurrency
    assert_valid(body)
    assert weights(body) == {"v1": 100, "v2": 0}
    assert predict_route(body)["route"][1]["destination"] == {
        "host": "driftloop",
        "subset": "v2",
        "port": {"number": 8000},
    }

    assert router.set_weight(10.0) == RouteTable("1", "2", 10.0, False)
    assert weights(api.stored) == {"v1": 90, "v2": 10}
    assert_valid(api.replaces()[-1])
    # everything else is kept: the other route, matches, timeout, retries, labels
    route = predict_route(api.stored)
    assert (route["timeout"], route["retries"]) == ("2s", {"attempts": 2})
    assert api.stored["spec"]["http"][0] == virtualservice()["spec"]["http"][0]
    assert api.stored["metadata"]["labels"] == {"app": "driftloop"}
    assert router.current() == RouteTable("1", "2", 10.0, False)


def test_setting_the_weight_it_has_writes_nothing(
    api: MemoryCustomObjects, harness: Harness
) -> None:
    router = make_router(api, with_challenger(harness))
    router.reload()
    router.set_weight(50.0)
    writes = len(api.replaces())
    version = api.stored["metadata"]["resourceVersion"]
    assert router.set_weight(50.0) == RouteTable("1", "2", 50.0, False)
    assert router.reload() == RouteTable("1", "2", 50.0, False)  # same challenger: kept
    assert len(api.replaces()) == writes
    assert api.stored["metadata"]["resourceVersion"] == version


def test_shadow_mirrors_to_the_challenger_and_is_removed_after(
    api: MemoryCustomObjects, harness: Harness
) -> None:
    router = make_router(api, with_challenger(harness))
    router.reload()
    assert router.set_weight(0.0, shadow=True) == RouteTable("1", "2", 0.0, True)
    route = predict_route(api.stored)
    assert route["mirror"] == {"host": "driftloop", "subset": "v2", "port": {"number": 8000}}
    assert route["mirrorPercentage"] == {"value": 100.0}
    assert weights(api.stored) == {"v1": 100, "v2": 0}
    assert_valid(api.replaces()[-1])
    assert router.current().shadow

    router.set_weight(10.0, shadow=False)
    route = predict_route(api.stored)
    assert "mirror" not in route and "mirrorPercentage" not in route
    assert_valid(api.replaces()[-1])


def test_a_concurrent_edit_is_reread_and_kept(api: MemoryCustomObjects, harness: Harness) -> None:
    router = make_router(api, with_challenger(harness))
    router.reload()
    api.interfere = 2
    assert router.set_weight(10.0) == RouteTable("1", "2", 10.0, False)
    sent = api.replaces()[-3:]
    # three replaces: two refused with 409, the third with the version re-read after them
    assert len({b["metadata"]["resourceVersion"] for b in sent}) == 3
    assert weights(api.stored) == {"v1": 90, "v2": 10}
    assert api.stored["metadata"]["annotations"] == {"edited-by": "other-2"}  # theirs kept


def test_endless_conflicts_raise_a_router_error_after_the_retries(
    api: MemoryCustomObjects, harness: Harness
) -> None:
    router = make_router(api, with_challenger(harness), retries=3)
    router.reload()
    api.interfere = 100
    before = len(api.replaces())
    with pytest.raises(RouterError, match="409 Conflict on every replace"):
        router.set_weight(10.0)
    assert len(api.replaces()) - before == 4  # the first try and 3 retries
    assert weights(api.stored) == {"v1": 100, "v2": 0}


def test_errors_are_router_errors_with_the_reason(harness: Harness) -> None:
    missing = MemoryCustomObjects(virtualservice())
    missing.objects.clear()
    with pytest.raises(RouterError, match=r"shop/driftloop: HTTP 404 Not Found: .*apply it"):
        make_router(missing, harness.registry).current()

    api = MemoryCustomObjects(virtualservice())
    router = make_router(api, harness.registry)
    with pytest.raises(RouterError, match="no challenger"):
        router.set_weight(10.0)
    with_challenger(harness)
    router.reload()
    with pytest.raises(RouterError, match="whole percents"):
        router.set_weight(12.5)
    predict_route(api.stored)["route"][0]["destination"]["subset"] = "stable"
    with pytest.raises(RouterError, match="not named v"):
        router.current()
    with pytest.raises(RouterError, match="no HTTP route 'nope'"):
        IstioRouter(api, harness.registry, namespace=NS, name=NAME, route="nope").current()


def test_a_rollout_drives_the_virtualservice_to_promotion(harness: Harness) -> None:
    """The controller on the Istio router: seeded traffic split by the VirtualService's
    live weights (read back through the router), 10 % -> 50 % -> promoted."""
    api = MemoryCustomObjects(virtualservice())
    router = make_router(api, harness.registry)
    ctl = harness.controller(router=router)
    traffic = Traffic(router, harness.metrics, seed=1)  # type: ignore[arg-type]
    history: list[dict[str, int]] = []
    tick: Callable[[Any], None] = lambda r: (traffic(r), history.append(weights(api.stored)))  # noqa: E731

    final = ctl.run(ctl.start("2").id, on_tick=tick)

    assert final.state == "promoted", final.reason
    assert {"v1": 90, "v2": 10} in history and {"v1": 50, "v2": 50} in history
    assert weights(api.stored) == {"v2": 100}  # v2 is the champion, alone
    assert router.current() == RouteTable("2", None, 0.0, False)
    assert harness.registry.alias(CHAMPION).version == "2"
    for body in api.replaces():
        assert_valid(body)


def test_open_controller_chooses_the_router_from_config(harness: Harness) -> None:
    import dataclasses

    from driftloop.rollout.factory import open_controller
    from driftloop.rollout.router import ServerAdminRouter

    project = harness.project
    istio = RolloutConfig(
        router="istio", istio=IstioConfig(namespace=NS, virtualservice=NAME, route="predict")
    )
    config = project.config.model_copy(update={"rollout": istio})
    api = MemoryCustomObjects(virtualservice())
    ctl = open_controller(dataclasses.replace(project, config=config), kube_api=api)
    assert isinstance(ctl.router, IstioRouter)
    assert ctl.router.current() == RouteTable("1", None, 0.0, False)
    assert isinstance(open_controller(project).router, ServerAdminRouter)


def test_the_istio_config_validates_the_subset_template() -> None:
    assert RolloutConfig().router == "server"
    assert IstioConfig(subset_template="driftloop-{version}").subset_template
    with pytest.raises(ValueError, match="subset_template"):
        IstioConfig(subset_template="v{ver}")


def test_the_router_finds_and_moves_the_virtualservice_deploy_k8s_renders(
    harness: Harness,
) -> None:
    """`driftloop deploy k8s` and the istio router agree on names, subsets and route."""
    import dataclasses

    from driftloop.config import dump_config
    from driftloop.deploy.k8s import DeployTarget, ServedVersions, virtual_service
    from driftloop.rollout.factory import open_router

    project = harness.project
    config = project.config.model_copy(update={"rollout": RolloutConfig(router="istio")})
    target = DeployTarget(
        config, harness.registry.model_name, ServedVersions("1"), dump_config(config)
    )
    rendered = virtual_service(target)
    api = MemoryCustomObjects(rendered)
    router = open_router(
        dataclasses.replace(project, config=config),
        with_challenger(harness),
        "http://unused",
        kube_api=api,
    )
    assert isinstance(router, IstioRouter)
    assert router.where == f"VirtualService {target.namespace}/{target.name}"
    assert router.current() == RouteTable("1", None, 0.0, False)
    router.reload()
    router.set_weight(10.0)
    (route,) = api.stored["spec"]["http"]
    assert route["name"] == "canary"
    assert {d["destination"]["subset"]: d["weight"] for d in route["route"]} == {"v1": 90, "v2": 10}
    for body in api.replaces():
        assert_valid(body)
