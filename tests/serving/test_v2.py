"""Decoding V2 requests: JSON tensors, the binary extension, and every refusal."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from driftloop.errors import RequestError
from driftloop.serving.v2 import decode_request, encode_response, features_matrix

NAMES = ("a", "b", "c")
SHORT_BINARY = orjson.dumps(
    {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32",
                 "parameters": {"binary_data_size": 12}}]}
)  # fmt: skip


def body(inputs: list[dict[str, object]], **extra: object) -> bytes:
    return orjson.dumps({"inputs": inputs, **extra})


def test_one_matrix_tensor() -> None:
    req = decode_request(
        body([{"name": "input", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}]),
        None, 100,
    )  # fmt: skip
    x = features_matrix(req, NAMES, frozenset())
    assert x.dtype == np.float32 and x.tolist() == [[1, 2, 3], [4, 5, 6]]


def test_one_tensor_per_feature_in_any_order() -> None:
    inputs = [
        {"name": n, "shape": [2], "datatype": "FP64", "data": [i, i + 10]}
        for i, n in enumerate(reversed(NAMES))
    ]
    x = features_matrix(decode_request(body(inputs), None, 100), NAMES, frozenset())
    assert x.tolist() == [[2, 1, 0], [12, 11, 10]]


def test_binary_tensor_extension() -> None:
    data = np.arange(6, dtype="<f4")
    header = body([{"name": "input", "shape": [2, 3], "datatype": "FP32",
                    "parameters": {"binary_data_size": 24}}],
                  parameters={"binary_data_output": True})  # fmt: skip
    req = decode_request(header + data.tobytes(), str(len(header)), 100)
    assert req.binary_output
    assert features_matrix(req, NAMES, frozenset()).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_binary_response_carries_its_header_length() -> None:
    payload, headers = encode_response("m", "3", "r1", np.array([1.5, 2.5]), True, {})
    length = int(headers["Inference-Header-Content-Length"])
    doc = orjson.loads(payload[:length])
    assert doc["model_version"] == "3" and doc["outputs"][0]["parameters"]["binary_data_size"] == 16
    assert np.frombuffer(payload[length:], dtype="<f8").tolist() == [1.5, 2.5]


@pytest.mark.parametrize(
    ("raw", "header", "message"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"[]", None, "must be a JSON object"),
        (b'{"inputs": []}', None, "non-empty list"),
        (body([{"name": "input", "shape": [1, 3], "datatype": "STRING", "data": [1, 2, 3]}]),
         None, "datatype 'STRING' is not supported"),
        (body([{"name": "input", "shape": [2, 3], "datatype": "FP32", "data": [1, 2]}]),
         None, "holds 2 values but shape \\[2, 3\\] needs 6"),
        (body([{"name": "input", "shape": [1, 3], "datatype": "INT32", "data": ["x", 1, 2]}]),
         None, "is not all INT32 values"),
        (body([{"name": "input", "shape": [-1, 3], "datatype": "FP32", "data": [1, 2, 3]}]),
         None, "shape must be a list of whole numbers"),
        (SHORT_BINARY + b"\x00" * 4, str(len(SHORT_BINARY)), "runs past the 4 binary bytes"),
        (b"{}", "10", "does not fit the 2-byte body"),
        (b'{"inputs": [{"name": "x"}]}' + b"\x00" * 4, "abc", "is not a number"),
    ],
)  # fmt: skip
def test_malformed_requests_name_the_problem(raw: bytes, header: str | None, message: str) -> None:
    with pytest.raises(RequestError, match=message) as err:
        decode_request(raw, header, 100)
    assert 400 <= err.value.http_status < 500


def test_batch_over_the_limit_is_413() -> None:
    raw = body([{"name": "input", "shape": [5, 3], "datatype": "FP32", "data": [0] * 15}])
    with pytest.raises(RequestError, match=r"exceeds serving\.max_batch_rows 4") as err:
        decode_request(raw, None, 4)
    assert err.value.http_status == 413


def test_wrong_width_missing_and_extra_features() -> None:
    wide = decode_request(
        body([{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]),
        None, 10,
    )  # fmt: skip
    with pytest.raises(RequestError, match="has 4 columns but the model takes 3"):
        features_matrix(wide, NAMES, frozenset())
    named = decode_request(
        body([{"name": n, "shape": [1], "datatype": "FP32", "data": [1]} for n in ("a", "b", "z")]),
        None, 10,
    )  # fmt: skip
    with pytest.raises(RequestError, match=r"missing \['c'\], unknown \['z'\]"):
        features_matrix(named, NAMES, frozenset())


def test_nan_only_where_allowed() -> None:
    req = decode_request(
        body([{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, None, 3]}]),
        None, 10,
    )  # fmt: skip
    assert np.isnan(features_matrix(req, NAMES, frozenset({"b"}))[0, 1])
    with pytest.raises(RequestError, match=r"NaN or infinite values in \['b'\]") as err:
        features_matrix(req, NAMES, frozenset())
    assert err.value.http_status == 422
