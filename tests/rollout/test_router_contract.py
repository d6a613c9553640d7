"""Route resolution is one pure function, and every router answers as it does.

``resolve_routes`` is table-tested; then the same script of alias moves and weight changes
runs through each router (in memory, Istio against an in-memory Kubernetes API, and the
server's own service, which ``ServerAdminRouter`` drives over HTTP), and every router must
end each step on the same table, hence send every entity key to the same version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.rollout.conftest import Harness
from tests.rollout.test_istio_router import MemoryCustomObjects, make_router, virtualservice

from driftloop.registry import CHALLENGER, aliases
from driftloop.rollout.router import NoopRouter
from driftloop.serving.routing import RouteTable, choose, resolve_routes
from driftloop.serving.service import ModelService, RoutingStore

KEYS = [f"store-{i}:item-{j}" for i in range(20) for j in range(20)]


@pytest.mark.parametrize(
    ("champion", "challenger", "previous", "expected"),
    [
        ("1", None, None, RouteTable("1")),
        ("1", "2", None, RouteTable("1", "2")),
        ("1", "1", None, RouteTable("1")),  # a challenger equal to the champion is none
        ("1", "2", RouteTable("1", "2", 50.0, True), RouteTable("1", "2", 50.0, True)),
        ("1", "3", RouteTable("1", "2", 50.0, True), RouteTable("1", "3")),  # new challenger
        ("3", "2", RouteTable("1", "2", 50.0), RouteTable("3", "2")),  # new champion
        ("2", None, RouteTable("1", "2", 100.0), RouteTable("2")),  # promoted
    ],
)
def test_resolve_routes(
    champion: str, challenger: str | None, previous: RouteTable | None, expected: RouteTable
) -> None:
    assert resolve_routes(champion, challenger, previous) == expected


class ServiceRouter:
    """The server's side of ``ServerAdminRouter``: its admin calls, in process."""

    def __init__(self, service: ModelService) -> None:
        self.service = service

    def current(self) -> RouteTable:
        return self.service.state.routes

    def set_weight(self, weight: float, shadow: bool = False) -> RouteTable:
        return self.service.set_weights(weight, shadow).routes

    def reload(self) -> RouteTable:
        return self.service.reload().routes


def _router(kind: str, harness: Harness, tmp_path: Path) -> Any:
    if kind == "noop":
        return NoopRouter(harness.registry)
    if kind == "istio":
        return make_router(MemoryCustomObjects(virtualservice()), harness.registry)
    store = RoutingStore(tmp_path / "routing.db", harness.registry.model_name)
    return ServiceRouter(ModelService(harness.registry, store))


def _script(router: Any, registry: Any) -> list[RouteTable]:
    def challenger(version: str) -> None:
        aliases.point(registry, CHALLENGER, version, kind="canary", actor="t", reason="r")

    tables = [router.reload()]
    challenger("2")
    tables += [router.reload(), router.set_weight(50.0), router.reload()]
    aliases.promote(registry, "2", actor="t", reason="promoted")
    tables.append(router.reload())
    challenger("1")
    tables += [router.reload(), router.set_weight(10.0, True), router.current()]
    aliases.clear_challenger(registry, actor="t", reason="stop")
    tables.append(router.reload())
    return tables


EXPECTED = [
    RouteTable("1"),
    RouteTable("1", "2"),
    RouteTable("1", "2", 50.0),
    RouteTable("1", "2", 50.0),  # the same pair keeps its weight
    RouteTable("2"),
    RouteTable("2", "1"),
    RouteTable("2", "1", 10.0, True),
    RouteTable("2", "1", 10.0, True),
    RouteTable("2"),
]


@pytest.mark.parametrize("kind", ["noop", "istio", "service"])
def test_every_router_resolves_as_the_function(kind: str, harness: Harness, tmp_path: Path) -> None:
    tables = _script(_router(kind, harness, tmp_path), harness.registry)
    assert tables == EXPECTED
    answers = [[choose(t, k) for k in KEYS] for t in tables]
    assert answers == [[choose(t, k) for k in KEYS] for t in EXPECTED]
