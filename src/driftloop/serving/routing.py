"""Sticky weighted routing between champion and challenger (pure).

An entity's bucket is a hash of its key salted with the challenger's version, so the
same entity sees the same version during a step, and as the weight only grows
(10 -> 50 -> 100) an entity once on the challenger stays there. A new challenger gets
a new salt, hence a fresh sample of entities.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

__all__ = ["BUCKETS", "RouteTable", "bucket", "choose", "resolve_routes", "splits"]

BUCKETS = 10_000  # weights resolve to 0.01 %


def bucket(key: str, salt: str) -> int:
    """A stable bucket in ``[0, BUCKETS)`` for ``key`` (BLAKE2b, not Python's hash)."""
    digest = hashlib.blake2b(f"{salt}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


@dataclass(frozen=True)
class RouteTable:
    """Who serves: swapped whole, never edited in place, so a request sees one table."""

    champion: str
    challenger: str | None = None
    challenger_weight: float = 0.0  # percent of entities, 0..100
    shadow: bool = False  # the challenger also scores champion traffic, never answering

    def __post_init__(self) -> None:
        if not 0.0 <= self.challenger_weight <= 100.0:
            raise ValueError(
                f"challenger_weight must be within 0..100 percent, got {self.challenger_weight}"
            )
        if self.challenger is None and (self.challenger_weight > 0 or self.shadow):
            raise ValueError("a weight or shadow mode needs a challenger version")
        if self.challenger is not None and self.challenger == self.champion:
            raise ValueError(f"v{self.champion} cannot be champion and challenger at once")

    @property
    def salt(self) -> str:
        return f"challenger-{self.challenger}"

    def with_weight(self, weight: float, shadow: bool | None = None) -> RouteTable:
        return replace(
            self,
            challenger_weight=float(weight),
            shadow=self.shadow if shadow is None else shadow,
        )

    def versions(self) -> tuple[str, ...]:
        return (self.champion,) if self.challenger is None else (self.champion, self.challenger)


def splits(table: RouteTable) -> bool:
    """Whether the key decides anything: a challenger with a positive weight (else every
    key goes to the champion, and a caller need not build keys)."""
    return table.challenger is not None and table.challenger_weight > 0.0


def choose(table: RouteTable, key: str) -> tuple[str, str]:
    """(alias, version) that answers for ``key`` under ``table``."""
    if not splits(table) or table.challenger is None:  # the second: for the type checker
        return "champion", table.champion
    threshold = round(table.challenger_weight * BUCKETS / 100.0)
    if bucket(key, table.salt) < threshold:
        return "challenger", table.challenger
    return "champion", table.champion


def resolve_routes(
    champion: str, challenger: str | None, previous: RouteTable | None
) -> RouteTable:
    """The table a reload serves, given the versions the registry's aliases name.

    A challenger equal to the champion is no challenger. The challenger keeps its weight
    and shadow mode only when ``previous`` served the same champion and challenger; a new
    pair starts at 0 %, so a changed champion never inherits a canary's share. The server
    and every traffic router resolve a reload here (``tests/rollout/test_router_contract``).
    """
    ch = challenger if challenger != champion else None
    if ch is None or previous is None or (previous.champion, previous.challenger) != (champion, ch):
        return RouteTable(champion, ch)
    return RouteTable(champion, ch, previous.challenger_weight, previous.shadow)
