"""Property: any body and header give a decoded request or a RequestError naming the problem."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from driftloop.errors import RequestError
from driftloop.serving.v2 import DATATYPES, decode_request, features_matrix

MAX_ROWS = 6
FEATURES = ("a", "b", "c")
NULLABLE = frozenset({"b"})
# Every rejection says which part of the request is wrong, in the client's terms.
PROBLEM_WORDS = (
    "input",
    "body",
    "JSON",
    "Inference-Header-Content-Length",
    "binary",
    "batch",
    "parameters",
    "outputs",
    "rows",
    "NaN",
    "infinite",
    "features",
    "shape",
)
FUZZ = settings(
    max_examples=250,
    derandomize=True,
    deadline=timedelta(seconds=2),  # a hang or a runaway allocation fails, a slow CI does not
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def mostly(valid: st.SearchStrategy[Any], broken: st.SearchStrategy[Any]) -> Any:
    """``valid`` three times in four, so that later checks see broken parts too."""
    # two coin flips (hypothesis favours the ends of an integer range, not its middle)
    return st.tuples(st.booleans(), st.booleans()).flatmap(lambda t: broken if all(t) else valid)


dims = mostly(st.integers(0, 4), st.integers(-2, -1) | st.sampled_from([2**31, 2**63 - 1]))
shapes = mostly(
    st.lists(dims, min_size=1, max_size=3),
    json_values
    | st.sampled_from([[2**32, 2**32], [2**31, 2**33, 0], [3, 0, 2**63 - 1], [True], []]),
)
numbers = st.integers(-(2**70), 2**70) | st.floats() | st.booleans()


@st.composite
def tensors(draw: st.DrawFn) -> Any:
    spec: dict[str, Any] = {
        "name": draw(mostly(st.sampled_from([*FEATURES, "input"]), st.just("") | json_values)),
        "shape": draw(shapes),
        "datatype": draw(
            mostly(
                st.sampled_from(list(DATATYPES)), st.sampled_from(["BYTES", "fp32"]) | json_values
            )
        ),
    }
    if draw(mostly(st.just(True), st.just(False))):
        spec["data"] = draw(
            mostly(
                st.lists(numbers, max_size=12)
                | st.lists(st.lists(numbers, min_size=3, max_size=3), max_size=4),
                json_values,
            )
        )
    if draw(st.booleans()):
        spec["parameters"] = draw(
            mostly(
                st.fixed_dictionaries({"binary_data_size": st.integers(-4, 64) | json_values}),
                json_values,
            )
        )
    return spec


outputs = st.lists(
    st.fixed_dictionaries(
        {"name": st.just("predict")},
        optional={
            "parameters": mostly(st.fixed_dictionaries({"binary_data": st.booleans()}), json_values)
        },
    ),
    max_size=2,
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, str | None]:
    doc: Any = {"inputs": draw(mostly(st.lists(tensors(), min_size=1, max_size=3), json_values))}
    if draw(st.booleans()):
        doc["outputs"] = draw(mostly(outputs, json_values))
    for key in ("id", "parameters"):
        if draw(st.booleans()):
            doc[key] = draw(mostly(st.just({"binary_data_output": True}), json_values))
    header = json.dumps(doc).encode()  # stdlib: big integers, NaN and Infinity pass through
    tail = draw(st.binary(max_size=64))
    length = draw(
        mostly(
            st.sampled_from([None, str(len(header))]),
            st.sampled_from(["x", "-1", "0", str(len(header) + 1)]),
        )
    )
    return header + (tail if length is not None else b""), length


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[bytes, str | None]:
    """Requests a client library would send: one [N, 3] tensor, JSON or binary data."""
    rows = draw(st.integers(1, MAX_ROWS + 2))
    datatype = draw(st.sampled_from(list(DATATYPES)))
    dtype = DATATYPES[datatype]
    values = draw(
        st.lists(st.floats(width=16) | st.integers(0, 255), min_size=rows * 3, max_size=rows * 3)
    )
    with np.errstate(all="ignore"):
        array = np.asarray(values, dtype=np.float64).astype(dtype)
    tensor: dict[str, Any] = {"name": "input", "shape": [rows, 3], "datatype": datatype}
    if not draw(st.booleans()):
        tensor["data"] = array.tolist()
        return json.dumps({"inputs": [tensor]}).encode(), None
    tensor["parameters"] = {"binary_data_size": array.nbytes}
    header = json.dumps({"inputs": [tensor]}).encode()
    return header + array.tobytes(), str(len(header))


def check(body: bytes, header: str | None) -> None:
    try:
        request = decode_request(body, header, MAX_ROWS)
        matrix = features_matrix(request, FEATURES, NULLABLE)
    except RequestError as exc:
        message = str(exc)
        assert 400 <= exc.http_status < 500
        assert any(word in message for word in PROBLEM_WORDS), message
        return
    assert matrix.dtype == np.float32 and matrix.shape[1] == len(FEATURES)
    assert 0 < matrix.shape[0] <= MAX_ROWS
    assert not np.isinf(matrix).any() and not np.isnan(np.delete(matrix, 1, axis=1)).any()


@settings(FUZZ, max_examples=600)  # broken parts are rare by design: more draws
@given(requests())
def test_structured_requests_decode_or_are_refused_by_name(case: tuple[bytes, str | None]) -> None:
    check(*case)


@FUZZ
@given(well_formed())
def test_well_formed_requests_reach_the_model_or_name_the_bad_values(
    case: tuple[bytes, str | None],
) -> None:
    check(*case)


@FUZZ
@given(st.binary(max_size=256), st.none() | st.text(max_size=6))
@example(b"\xff\xfe", None)
@example(b'{"inputs": [{"name": "a", "shape": [1], "datatype": "FP32"}]}', "100")
def test_arbitrary_bytes_are_refused_by_name(body: bytes, header: str | None) -> None:
    check(body, header)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        # np.prod wrapped 2**32 * 2**32 to 0 in int64: an empty list "fit", then reshape raised
        ({"shape": [2**32, 2**32], "data": []}, "data holds 0 values but shape"),
        ({"shape": [1], "datatype": ["FP32"], "data": [1]}, "datatype ['FP32'] is not supported"),
        ({"shape": [1], "data": [1e10], "datatype": "FP16"}, "out of range for FP16"),
        # an empty tensor with dimensions numpy cannot address: reshape raised ValueError
        ({"shape": [2**31, 2**33, 0], "data": []}, "is too large to build"),
        ({"shape": [3, 0, 2**63 - 1], "data": [], "datatype": "INT64"}, "is too large to build"),
        ({"shape": [2**31, 2**33, 0], "parameters": {"binary_data_size": 0}}, "too large"),
    ],
)
def test_regressions_found_by_fuzzing(spec: dict[str, Any], message: str) -> None:
    tensor = {"name": "a", "datatype": "FP32", **spec}
    with pytest.raises(RequestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        decode_request(orjson.dumps({"inputs": [tensor]}), None, MAX_ROWS)


def test_outputs_with_non_object_parameters_are_refused() -> None:
    body = orjson.dumps(
        {
            "inputs": [{"name": "a", "shape": [1], "datatype": "FP32", "data": [1]}],
            "outputs": [{"name": "predict", "parameters": [1]}],
        }
    )
    with pytest.raises(RequestError, match=r"outputs\[0\].parameters must be an object"):
        decode_request(body, None, MAX_ROWS)
