"""Traffic routers: who receives the canary's share. One interface, several backends.

* :class:`ServerAdminRouter` drives a running ``driftloop serve`` through its admin API.
* :class:`NoopRouter` holds the route table in memory and resolves aliases from the
  registry like the server does; tests and dry runs use it.

A router only moves traffic and reloads aliases; the rollout moves the registry aliases
itself, so every backend shares one promotion and rollback path. ``set_weight`` is
idempotent: setting the weight a router already has changes nothing.
"""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol

from driftloop.errors import RouterError
from driftloop.registry.base import CHALLENGER, CHAMPION, ModelRegistry
from driftloop.serving.routing import RouteTable, resolve_routes

__all__ = ["NoopRouter", "ServerAdminRouter", "TrafficRouter", "route_table"]


class TrafficRouter(Protocol):
    """Reads and changes the live route table."""

    def current(self) -> RouteTable: ...

    def set_weight(self, weight: float, shadow: bool = False) -> RouteTable: ...

    def reload(self) -> RouteTable: ...


def route_table(doc: dict[str, Any]) -> RouteTable:
    """A route table from the server's ``/admin/routes`` answer."""
    try:
        challenger = doc.get("challenger")
        return RouteTable(
            str(doc["champion"]),
            None if challenger is None else str(challenger),
            float(doc.get("challenger_weight", 0.0)),
            bool(doc.get("shadow", False)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RouterError(f"the server's route table is not understood ({exc}): {doc!r}") from None


class ServerAdminRouter:
    """A driftloop server's admin API (bearer token)."""

    def __init__(self, base_url: str, token: str | None, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> RouteTable:
        if not self._token:
            raise RouterError(
                "the rollout needs the server's admin token: set DRIFTLOOP_ADMIN_TOKEN (the "
                "same value the server was started with) or serving.admin_token"
            )
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                doc = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            with contextlib.suppress(json.JSONDecodeError, AttributeError):
                detail = json.loads(detail).get("error", detail)
            where = f"{method} {self.base_url}{path}"
            raise RouterError(f"{where}: HTTP {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RouterError(
                f"cannot reach the server at {self.base_url} ({reason}); is `driftloop serve` "
                "running there?"
            ) from None
        return route_table(doc)

    def current(self) -> RouteTable:
        return self._call("GET", "/admin/routes")

    def set_weight(self, weight: float, shadow: bool = False) -> RouteTable:
        return self._call("POST", "/admin/weights", {"challenger_weight": weight, "shadow": shadow})

    def reload(self) -> RouteTable:
        return self._call("POST", "/admin/reload", {})

    def __repr__(self) -> str:  # never the token
        return f"ServerAdminRouter({self.base_url!r})"


@dataclass
class NoopRouter:
    """Routes in memory only; ``calls`` records every change for tests to read."""

    registry: ModelRegistry
    table: RouteTable | None = None
    calls: list[tuple[str, float, bool]] = field(default_factory=list)

    def current(self) -> RouteTable:
        if self.table is None:
            return self.reload()
        return self.table

    def set_weight(self, weight: float, shadow: bool = False) -> RouteTable:
        table = self.current()
        if table.challenger is None:
            raise RouterError("there is no challenger to send traffic to")
        self.table = table.with_weight(weight, shadow)
        self.calls.append(("weight", float(weight), shadow))
        return self.table

    def reload(self) -> RouteTable:
        champion = self.registry.alias(CHAMPION)
        if champion is None:
            raise RouterError(f"model {self.registry.model_name!r} has no champion")
        challenger = self.registry.alias(CHALLENGER)
        ch = challenger.version if challenger else None
        self.table = resolve_routes(champion.version, ch, self.table)
        self.calls.append(("reload", self.table.challenger_weight, self.table.shadow))
        return self.table
