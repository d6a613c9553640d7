"""Open Inference Protocol V2 (KServe, Triton, MLServer): request decoding, responses.

JSON tensors and the binary tensor data extension. Decoding never trusts the client:
every problem raises RequestError naming the input and what is wrong.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from driftloop.errors import RequestError

__all__ = [
    "BINARY_HEADER",
    "DATATYPES",
    "V2Request",
    "decode_request",
    "encode_response",
    "features_matrix",
    "v2_row_ids",
]

BINARY_HEADER = "inference-header-content-length"
DATATYPES: Mapping[str, np.dtype[Any]] = {
    "BOOL": np.dtype("bool"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}


@dataclass(frozen=True)
class V2Request:
    """A decoded inference request."""

    id: str | None
    inputs: dict[str, np.ndarray]
    parameters: Mapping[str, Any]
    binary_output: bool
    output_names: tuple[str, ...]


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"request body is not valid JSON: {exc}") from None


def _shaped(name: str, array: np.ndarray, shape: list[int]) -> np.ndarray:
    # An empty tensor may still name dimensions numpy cannot address ([2**31, 2**33, 0]).
    try:
        return array.reshape(shape)
    except ValueError:
        raise RequestError(
            f"input {name!r}: shape {shape} is too large to build; each dimension must fit in "
            "memory"
        ) from None


def _tensor(spec: Any, index: int, binary: memoryview, offset: int) -> tuple[str, np.ndarray, int]:
    if not isinstance(spec, dict):
        raise RequestError(f"inputs[{index}] must be an object with name, shape, datatype, data")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise RequestError(f"inputs[{index}].name must be a non-empty string")
    shape = spec.get("shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise RequestError(
            f"input {name!r}: shape must be a list of whole numbers >= 0, got {shape!r}"
        )
    datatype = spec.get("datatype")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise RequestError(
            f"input {name!r}: datatype {datatype!r} is not supported; use one of "
            f"{', '.join(DATATYPES)}"
        )
    dtype = DATATYPES[str(datatype)]
    count = math.prod(shape)  # exact: np.prod wraps around in int64 (2**32 * 2**32 == 0)
    params = spec.get("parameters") or {}
    size = params.get("binary_data_size") if isinstance(params, dict) else None
    if size is not None:
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
            or offset + size > len(binary)
        ):
            raise RequestError(
                f"input {name!r}: binary_data_size {size!r} runs past the {len(binary)} "
                "binary bytes sent"
            )
        if size != count * dtype.itemsize:
            raise RequestError(
                f"input {name!r}: {size} binary bytes do not hold shape {shape} of {datatype} "
                f"({count * dtype.itemsize} bytes)"
            )
        array = np.frombuffer(binary[offset : offset + size], dtype=dtype)
        return name, _shaped(name, array, shape), offset + size
    if "data" not in spec:
        raise RequestError(f"input {name!r}: no data (and no binary_data_size)")
    probe = None if dtype.kind == "b" else _refuse_non_numbers(name, spec["data"], datatype)
    try:
        with np.errstate(over="raise", invalid="raise"):
            if probe is not None and dtype.kind == "f" and probe.dtype.kind in "biuf":
                array = probe.astype(dtype, copy=False)  # the numbers, read once
            else:  # integer tensors: NumPy refuses out-of-range Python ints, not a cast
                array = np.asarray(spec["data"], dtype=dtype)
    except FloatingPointError:
        raise RequestError(
            f"input {name!r}: data holds values out of range for {datatype}"
        ) from None
    except (TypeError, ValueError, OverflowError):
        raise RequestError(f"input {name!r}: data is not all {datatype} values") from None
    if array.size != count:
        raise RequestError(
            f"input {name!r}: data holds {array.size} values but shape {shape} needs {count}"
        )
    return name, _shaped(name, array, shape), offset


def _refuse_non_numbers(name: str, data: Any, datatype: str) -> np.ndarray | None:
    """JSON ``null`` and strings are no values of a numeric tensor (NumPy would read them
    as NaN and parse "1.5"): refuse them, naming the first one's position. Returns the
    data as NumPy read them (None when it could not)."""
    try:
        probe = np.asarray(data)
    except (TypeError, ValueError):
        return None  # ragged or odd: the conversion names it
    if probe.dtype.kind not in "OUS":
        return probe
    for i, value in enumerate(_flat(data)):
        if value is None:
            raise RequestError(
                f"input {name!r}: data is not all {datatype} values: null at position {i} "
                "(row-major). A feature that may be missing is sent as NaN in binary data, "
                "or its per-feature tensor is left out",
                422,
            )
        if isinstance(value, str | dict):
            raise RequestError(
                f"input {name!r}: data is not all {datatype} values: {value!r} at position "
                f"{i} (row-major)",
                422,
            )
    return None


def _flat(data: Any) -> Iterator[Any]:
    """The values of nested JSON lists, row-major."""
    if isinstance(data, list):
        for item in data:
            yield from _flat(item)
    else:
        yield data


def decode_request(body: bytes, header_length: str | None, max_rows: int) -> V2Request:
    """Decode a V2 infer body; ``header_length`` is the binary extension's header value."""
    binary = memoryview(b"")
    if header_length is not None:
        try:
            json_length = int(header_length)
        except ValueError:
            raise RequestError(
                f"Inference-Header-Content-Length {header_length!r} is not a number"
            ) from None
        if not 0 < json_length <= len(body):
            raise RequestError(
                f"Inference-Header-Content-Length {json_length} does not fit the "
                f"{len(body)}-byte body"
            )
        binary = memoryview(body)[json_length:]
        body = body[:json_length]
    doc = _json(body)
    if not isinstance(doc, dict):
        raise RequestError("request body must be a JSON object with an 'inputs' list")
    specs = doc.get("inputs")
    if not isinstance(specs, list) or not specs:
        raise RequestError("'inputs' must be a non-empty list of tensors")
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for i, spec in enumerate(specs):
        name, array, offset = _tensor(spec, i, binary, offset)
        if name in inputs:
            raise RequestError(f"input {name!r} is given twice")
        inputs[name] = array
    if offset != len(binary):
        raise RequestError(f"{len(binary) - offset} binary bytes were sent that no input claims")
    rows = next(iter(inputs.values())).shape[0]
    if rows > max_rows:
        raise RequestError(
            f"batch of {rows} rows exceeds serving.max_batch_rows {max_rows}; split it", 413
        )
    params = doc.get("parameters") or {}
    if not isinstance(params, dict):
        raise RequestError("'parameters' must be an object")
    outputs = doc.get("outputs") or []
    if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
        raise RequestError("'outputs' must be a list of objects")
    for i, o in enumerate(outputs):
        if not isinstance(o.get("parameters") or {}, dict):
            raise RequestError(f"outputs[{i}].parameters must be an object")
    binary_output = bool(params.get("binary_data_output")) or any(
        bool((o.get("parameters") or {}).get("binary_data")) for o in outputs
    )
    request_id = doc.get("id")
    return V2Request(
        id=str(request_id) if request_id is not None else None,
        inputs=inputs,
        parameters=params,
        binary_output=binary_output,
        output_names=tuple(str(o.get("name")) for o in outputs),
    )


def features_matrix(
    request: V2Request, feature_names: Sequence[str], nullable: frozenset[str]
) -> np.ndarray:
    """Rows x features as float32, from one [N, F] tensor or one [N] tensor per feature."""
    inputs = request.inputs
    names = list(feature_names)
    if len(inputs) == 1 and "input" in inputs and inputs["input"].ndim == 2:
        array = inputs["input"]
        if array.shape[1] != len(names):
            raise RequestError(
                f"input 'input' has {array.shape[1]} columns but the model takes {len(names)} "
                f"features, in this order: {', '.join(names)}"
            )
        matrix = array.astype(np.float32, copy=False)
    else:
        matrix = _feature_columns(inputs, names, nullable)
    if matrix.shape[0] == 0:
        raise RequestError("the request holds no rows")
    # One reduction for the usual all-finite case (float64 sums of float32 values cannot
    # overflow); NaN or inf anywhere makes the sum so (inf - inf: NaN, without a warning),
    # and the check below says where.
    with np.errstate(invalid="ignore"):
        total = float(matrix.sum(dtype=np.float64))
    if not math.isfinite(total):
        bad = ~np.isfinite(matrix)
        not_allowed = [n for j, n in enumerate(names) if bad[:, j].any() and n not in nullable]
        if not_allowed:
            raise RequestError(
                f"NaN or infinite values in {not_allowed}: only {sorted(nullable)} may be missing",
                422,
            )
        if np.isinf(matrix).any():
            raise RequestError("infinite values are never allowed in features", 422)
    return np.ascontiguousarray(matrix)


def _feature_columns(
    inputs: Mapping[str, np.ndarray], names: list[str], nullable: frozenset[str]
) -> np.ndarray:
    """One [N] (or [N, 1]) tensor per feature; a nullable feature left out is missing."""
    missing = [n for n in names if n not in inputs and n not in nullable]
    extra = [n for n in inputs if n not in names]
    if missing or extra:
        raise RequestError(
            f"inputs do not match the model's features: missing {missing}, unknown {extra}; "
            "send one [N, F] tensor named 'input', or one [N] tensor per feature "
            f"({', '.join(names)})"
        )
    columns: list[np.ndarray | None] = []
    rows = None
    for n in names:
        column = inputs.get(n)
        if column is None:
            columns.append(None)
            continue
        if column.ndim == 2 and column.shape[1] == 1:
            column = column[:, 0]
        if column.ndim != 1:
            raise RequestError(
                f"input {n!r} must have shape [N] or [N, 1], got {list(column.shape)}"
            )
        if rows is not None and column.shape[0] != rows:
            raise RequestError(f"input {n!r} has {column.shape[0]} rows, others have {rows}")
        rows = column.shape[0]
        columns.append(column.astype(np.float32, copy=False))
    if rows is None:
        raise RequestError("the inputs hold no feature the model takes besides missing ones")
    empty = np.full(rows, np.nan, dtype=np.float32)
    return np.column_stack([empty if c is None else c for c in columns])


def encode_response(
    model_name: str,
    version: str,
    request_id: str | None,
    predictions: np.ndarray,
    binary: bool,
    parameters: Mapping[str, Any],
) -> tuple[bytes, dict[str, str]]:
    """Body and extra headers of a V2 infer response with one output, ``predict``."""
    values = np.ascontiguousarray(predictions, dtype=np.float64)
    output: dict[str, Any] = {"name": "predict", "datatype": "FP64", "shape": [len(values), 1]}
    doc: dict[str, Any] = {
        "model_name": model_name,
        "model_version": version,
        "outputs": [output],
        "parameters": dict(parameters),
    }
    if request_id is not None:
        doc["id"] = request_id
    if not binary:
        output["data"] = values
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), {}
    raw = values.tobytes()
    output["parameters"] = {"binary_data_size": len(raw)}
    header = orjson.dumps(doc)
    return header + raw, {"Inference-Header-Content-Length": str(len(header))}


def v2_row_ids(rid: str, rows: int) -> list[str]:
    """The log's request ids of a V2 request's rows: ``rid``, or ``rid:i`` for several."""
    return [rid] if rows == 1 else [f"{rid}:{i}" for i in range(rows)]
