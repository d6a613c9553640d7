"""The server's OpenAPI description, kept by hand because the handlers read raw bodies.

A test checks that it lists exactly the routes the app serves, and schemathesis fuzzes
the server from it: what it promises (bodies, statuses, content types) is what runs.
The paths are here; the bodies they refer to are in :mod:`driftloop.serving.openapi_schemas`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from driftloop.serving.openapi_schemas import component_schemas
from driftloop.serving.v2 import BINARY_HEADER

__all__ = ["openapi_document"]

JSON = "application/json"
_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_REASONS = {
    400: "the body is not valid JSON or lacks a required part; the error names it",
    401: "missing or wrong bearer token",
    403: "the admin API is disabled (no admin token configured)",
    404: "the model, version or entity is not served here",
    409: "the change conflicts with the current state, or the version failed to load",
    413: "the body exceeds serving.max_body_bytes or the batch serving.max_batch_rows",
    422: "a value has the wrong type or range; the error names the field",
    500: "the model failed on this request; the error carries the request id",
    503: "no model is loaded yet",
}
_OBJ: dict[str, Any] = {"type": "object"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {JSON: {"schema": schema}}}


def _responses(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": "success", **ok}}
    for status in errors:
        out[str(status)] = {"description": _REASONS[status], **_json(_ERROR_REF)}
    return out


def _path_param(name: str, example: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
        "example": example,
    }


def _admin(summary: str, body: str | None, ok: dict[str, Any], *more: int) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": _responses(ok, 400, 401, 403, 409, 413, 422, 503, *more),
    }
    if body is not None:
        op["requestBody"] = {"required": False, **_json({"$ref": f"#/components/schemas/{body}"})}
    return op


def _v2_paths(name: dict[str, Any], any_json: dict[str, Any]) -> dict[str, Any]:
    """Open Inference Protocol V2: health, metadata, readiness and inference."""
    ver = _path_param("version", "1")
    infer = {
        "summary": "Open Inference Protocol V2 inference (JSON or binary tensor extension)",
        "parameters": [
            name,
            {
                "name": BINARY_HEADER,
                "in": "header",
                "required": False,
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            },
        ],
        "requestBody": {
            "required": True,
            "content": {
                JSON: {"schema": {"$ref": "#/components/schemas/InferenceRequest"}},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        "responses": _responses(
            {
                "content": {
                    JSON: {"schema": {"$ref": "#/components/schemas/InferenceResponse"}},
                    "application/octet-stream": {"schema": {"type": "string"}},
                }
            },
            400,
            404,
            413,
            422,
            500,
            503,
        ),
    }
    infer_version = {**infer, "parameters": [*infer["parameters"], ver]}
    meta = {"responses": _responses(any_json, 404, 503)}
    return {
        "/v2/health/live": {"get": {"responses": _responses(any_json)}},
        "/v2/health/ready": {"get": {"responses": _responses(any_json, 503)}},
        "/v2": {"get": {"responses": _responses(any_json)}},
        "/v2/models/{name}": {"get": {"parameters": [name], **meta}},
        "/v2/models/{name}/versions/{version}": {"get": {"parameters": [name, ver], **meta}},
        "/v2/models/{name}/ready": {"get": {"parameters": [name], **meta}},
        "/v2/models/{name}/versions/{version}/ready": {"get": {"parameters": [name, ver], **meta}},
        "/v2/models/{name}/infer": {"post": infer},
        "/v2/models/{name}/versions/{version}/infer": {"post": infer_version},
    }


def _predict_paths(any_json: dict[str, Any]) -> dict[str, Any]:
    """Entity predictions, one request or a batch."""
    return {
        "/v1/predict": {
            "post": {
                "summary": "predict for entities, features read from the online store",
                "requestBody": {
                    "required": True,
                    **_json({"$ref": "#/components/schemas/PredictRequest"}),
                },
                "responses": _responses(any_json, 400, 404, 413, 422, 500, 503),
            }
        },
        "/v1/predict/batch": {
            "post": {
                "summary": "several /v1/predict requests in one call, each answered, "
                "routed, logged and counted as if sent alone",
                "requestBody": {
                    "required": True,
                    **_json({"$ref": "#/components/schemas/PredictBatch"}),
                },
                "responses": _responses(any_json, 400, 404, 413, 422, 500, 503),
            }
        },
    }


def _feedback_and_metrics_paths() -> dict[str, Any]:
    """Feedback (outcomes) and the Prometheus metrics."""
    return {
        "/v1/feedback": {
            "post": {
                "summary": "outcomes by request id, or by entity and date; says which "
                "request ids matched a logged prediction (searched: recent ids in "
                "memory, then the last 7 serving days of the log)",
                "requestBody": {
                    "required": True,
                    **_json({"$ref": "#/components/schemas/FeedbackRequest"}),
                },
                "responses": _responses(
                    _json({"$ref": "#/components/schemas/FeedbackAnswer"}), 400, 413, 422
                ),
            }
        },
        "/metrics": {
            "get": {
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                }
            }
        },
    }


def _admin_paths(routes: dict[str, Any], any_json: dict[str, Any]) -> dict[str, Any]:
    """The admin API behind the bearer token."""
    return {
        "/admin/routes": {"get": _admin("the route table", None, routes)},
        "/admin/weights": {"post": _admin("set the challenger's weight", "Weights", routes)},
        "/admin/reload": {"post": _admin("reload aliases from the registry", None, routes)},
        "/admin/promote": {"post": _admin("make a version champion", "Promote", routes, 404)},
        "/admin/rollback": {"post": _admin("previous champion back", "Reason", routes)},
        "/admin/flush": {"post": _admin("flush the prediction and feedback logs", None, any_json)},
    }


def openapi_document(
    model_name: str, version: str, entity_keys: Mapping[str, str]
) -> dict[str, Any]:
    """OpenAPI 3.1 for the server of ``model_name`` (its name is the example path value);
    ``entity_keys`` maps each entity key of /v1/predict to its JSON type."""
    name = _path_param("name", model_name)
    routes = _json({"$ref": "#/components/schemas/Routes"})
    any_json = _json(_OBJ)
    return {
        "openapi": "3.1.0",
        "info": {"title": "driftloop model server", "version": version},
        "paths": {
            **_v2_paths(name, any_json),
            **_predict_paths(any_json),
            **_feedback_and_metrics_paths(),
            **_admin_paths(routes, any_json),
        },
        "components": {
            "schemas": component_schemas(entity_keys),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
