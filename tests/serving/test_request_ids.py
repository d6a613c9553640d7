"""The server's own request ids: unique, 32 hex digits, in the order they were made."""

from __future__ import annotations

import re

from driftloop.serving.api.common import new_request_id


def test_request_ids_are_hex_unique_and_sort_in_creation_order() -> None:
    ids = [new_request_id() for _ in range(2000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    prefixes = [i[:12] for i in ids]  # the milliseconds: never going back
    assert prefixes == sorted(prefixes)
