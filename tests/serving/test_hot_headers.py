"""The inference endpoints' headers, read in one pass over the raw list."""

from __future__ import annotations

from starlette.requests import Request

from driftloop.serving.api.common import hot_headers, request_id


def request(headers: list[tuple[bytes, bytes]]) -> Request:
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})


def test_hot_headers_first_of_each_name_and_nothing_else() -> None:
    found = hot_headers(
        request(
            [
                (b"content-type", b"application/json"),
                (b"x-request-id", b"abc"),
                (b"x-request-id", b"second"),
                (b"content-length", b"12"),
                (b"inference-header-content-length", b"7"),
            ]
        )
    )
    assert found == {
        b"x-request-id": "abc",
        b"content-length": "12",
        b"inference-header-content-length": "7",
    }
    assert request_id(request([]), found) == "abc"


def test_request_id_is_made_when_not_sent() -> None:
    rid = request_id(request([(b"content-length", b"3")]), {})
    assert len(rid) == 32 and rid != request_id(request([]), {})
