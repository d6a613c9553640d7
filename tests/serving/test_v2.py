"""Decoding V2 requests: JSON tensors, the binary extension, and every refusal."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from driftloop.errors import RequestError
from driftloop.serving.v2 import V2Request, decode_request, encode_response, features_matrix

NAMES = ("a", "b", "c")
SHORT_BINARY = orjson.dumps(
    {
        "inputs": [
            {
                "name": "input",
                "shape": [1, 3],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 12},
            }
        ]
    }
)


def body(inputs: list[dict[str, object]], **extra: object) -> bytes:
    return orjson.dumps({"inputs": inputs, **extra})


def test_one_matrix_tensor() -> None:
    req = decode_request(
        body([{"name": "input", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6]}]),
        None,
        100,
    )
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
    header = body(
        [
            {
                "name": "input",
                "shape": [2, 3],
                "datatype": "FP32",
                "parameters": {"binary_data_size": 24},
            }
        ],
        parameters={"binary_data_output": True},
    )
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
        (
            body([{"name": "input", "shape": [1, 3], "datatype": "STRING", "data": [1, 2, 3]}]),
            None,
            "datatype 'STRING' is not supported",
        ),
        (
            body([{"name": "input", "shape": [2, 3], "datatype": "FP32", "data": [1, 2]}]),
            None,
            "holds 2 values but shape \\[2, 3\\] needs 6",
        ),
        (
            body([{"name": "input", "shape": [1, 3], "datatype": "INT32", "data": ["x", 1, 2]}]),
            None,
            "is not all INT32 values",
        ),
        (
            body([{"name": "input", "shape": [-1, 3], "datatype": "FP32", "data": [1, 2, 3]}]),
            None,
            "shape must be a list of whole numbers",
        ),
        (SHORT_BINARY + b"\x00" * 4, str(len(SHORT_BINARY)), "runs past the 4 binary bytes"),
        (b"{}", "10", "does not fit the 2-byte body"),
        (b'{"inputs": [{"name": "x"}]}' + b"\x00" * 4, "abc", "is not a number"),
    ],
)
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
        None,
        10,
    )
    with pytest.raises(RequestError, match="has 4 columns but the model takes 3"):
        features_matrix(wide, NAMES, frozenset())
    named = decode_request(
        body([{"name": n, "shape": [1], "datatype": "FP32", "data": [1]} for n in ("a", "b", "z")]),
        None,
        10,
    )
    with pytest.raises(RequestError, match=r"missing \['c'\], unknown \['z'\]"):
        features_matrix(named, NAMES, frozenset())


def _binary_row(x: np.ndarray) -> V2Request:
    """One FP32 row of three features sent as binary data."""
    header = body(
        [
            {
                "name": "input",
                "shape": [1, 3],
                "datatype": "FP32",
                "parameters": {"binary_data_size": x.nbytes},
            }
        ]
    )
    return decode_request(header + x.tobytes(), str(len(header)), 10)


def test_nan_only_where_allowed() -> None:
    x = np.array([[1, np.nan, 3]], dtype="<f4")
    req = _binary_row(x)
    assert np.isnan(features_matrix(req, NAMES, frozenset({"b"}))[0, 1])
    with pytest.raises(RequestError, match=r"NaN or infinite values in \['b'\]") as err:
        features_matrix(req, NAMES, frozenset())
    assert err.value.http_status == 422


def test_plus_and_minus_infinity_in_one_request_are_named_without_a_warning() -> None:
    """inf and -inf sum to NaN: the one-reduction check must still name them (tests turn
    NumPy's 'invalid value' warning into an error, as the fuzz test found)."""
    x = np.array([[np.inf, 1, -np.inf]], dtype="<f4")
    req = _binary_row(x)
    with pytest.raises(RequestError, match=r"NaN or infinite values in \['a', 'c'\]"):
        features_matrix(req, NAMES, frozenset())


@pytest.mark.parametrize("datatype", ["FP32", "FP64", "INT64"])
def test_null_or_text_in_numeric_json_data_is_refused_by_position(datatype: str) -> None:
    for data, said in (
        ([1, None, 3], "null at position 1"),
        ([[1, 2], [3, "4"]], "'4' at position 3"),
    ):
        raw = body(
            [
                {
                    "name": "input",
                    "shape": [1, 3] if len(data) == 3 else [2, 2],
                    "datatype": datatype,
                    "data": data,
                }
            ]
        )
        with pytest.raises(RequestError, match=f"is not all {datatype} values: {said}") as err:
            decode_request(raw, None, 10)
        assert err.value.http_status == 422


def test_a_left_out_nullable_feature_tensor_is_missing_and_a_wrong_name_is_named() -> None:
    given = [{"name": n, "shape": [2], "datatype": "FP32", "data": [1, 2]} for n in ("a", "c")]
    x = features_matrix(decode_request(body(given), None, 10), NAMES, frozenset({"b"}))
    assert np.isnan(x[:, 1]).all() and x[:, 2].tolist() == [1, 2]
    with pytest.raises(RequestError, match=r"missing \['b'\]"):
        features_matrix(decode_request(body(given), None, 10), NAMES, frozenset())
    wrong = body([{"name": "features", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}])
    with pytest.raises(RequestError, match=r"unknown \['features'\].*named 'input'"):
        features_matrix(decode_request(wrong, None, 10), NAMES, frozenset())


@pytest.mark.parametrize("datatype", ["FP16", "FP32", "FP64"])
def test_float_json_data_read_once_equal_a_direct_conversion(datatype: str) -> None:
    # ints, floats and booleans mixed, as JSON sends them; the values NumPy read while
    # checking for null and text are cast, and must equal NumPy's own conversion
    data = [[1, 2.5, True], [0.1, -3, 1e-8], [65504, 1 / 3, False]]
    raw = body([{"name": "input", "shape": [3, 3], "datatype": datatype, "data": data}])
    got = decode_request(raw, None, 10).inputs["input"]
    want = np.asarray(data, dtype=np.dtype(datatype.replace("FP", "float")))
    assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_nan_or_inf_found_in_a_matrix_whose_sum_overflows_only_when_present() -> None:
    big = float(np.finfo(np.float32).max)
    raw = body([{"name": "input", "shape": [2, 3], "datatype": "FP32", "data": [big] * 6}])
    x = features_matrix(decode_request(raw, None, 10), NAMES, frozenset())
    assert np.isfinite(x).all()
