"""The OpenAPI description's component schemas: the request and answer bodies of V2
inference, /v1/predict, /v1/feedback and the admin API (the paths are in ``openapi``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from driftloop.serving.v2 import DATATYPES

__all__ = ["component_schemas"]


def _tensor() -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string", "minLength": 1},
            "shape": {"type": "array", "minItems": 1, "items": {"type": "integer", "minimum": 0}},
            "datatype": {"type": "string", "enum": list(DATATYPES)},
            "data": {
                "type": "array",
                "description": "row-major values (nested or flat); numbers only, no null: a "
                "missing value is NaN in binary data, or a nullable feature's tensor left out",
            },
            "parameters": {
                "type": "object",
                "properties": {"binary_data_size": {"type": "integer", "minimum": 0}},
            },
        },
    }


def component_schemas(entity_keys: Mapping[str, str]) -> dict[str, Any]:
    """Every request and answer body the paths refer to; ``entity_keys`` maps each entity
    key to its JSON type."""
    entity = {
        "type": "object",
        "required": list(entity_keys),
        "properties": {
            **{k: {"type": t} for k, t in entity_keys.items()},
            "request_id": {"type": "string"},
        },
        "additionalProperties": {"description": "a request-time feature"},
    }
    outcome = {
        "type": "object",
        "required": ["value"],
        "properties": {
            "value": {"type": "number"},
            "request_id": {"type": "string"},
            "kind": {"type": "string", "enum": ["label", "business"]},
            "name": {"type": "string", "minLength": 1},
            **{k: {"type": t} for k, t in entity_keys.items()},
            "date": {"type": "string", "format": "date"},
        },
        "additionalProperties": False,
    }
    return {
        **_v2_schemas(),
        **_predict_schemas(entity),
        **_feedback_schemas(outcome),
        **_admin_schemas(),
    }


def _v2_schemas() -> dict[str, Any]:
    """The error answer of every endpoint, and V2 inference's request and response."""
    return {
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {"type": "string", "minLength": 1},
                "unknown_entities": {
                    "type": "array",
                    "description": "/v1/predict (404): every entity without online features, "
                    "with its position in the request",
                    "items": {
                        "type": "object",
                        "required": ["position"],
                        "properties": {"position": {"type": "integer", "minimum": 0}},
                    },
                },
            },
        },
        "InferenceRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "inputs": {"type": "array", "minItems": 1, "items": _tensor()},
                "parameters": {"type": "object"},
                "outputs": {"type": "array", "items": {"type": "object"}},
            },
        },
        "InferenceResponse": {
            "type": "object",
            "required": ["model_name", "model_version", "outputs"],
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "outputs": {"type": "array"},
                "id": {"type": "string"},
            },
        },
    }


def _predict_schemas(entity: dict[str, Any]) -> dict[str, Any]:
    """/v1/predict and /v1/predict/batch, whose entities follow ``entity``."""
    return {
        "PredictRequest": {
            "type": "object",
            "required": ["entities"],
            "properties": {
                "entities": {"type": "array", "minItems": 1, "items": entity},
                "event_time": {"type": "string", "format": "date-time"},
                "routing_key": {"type": "string", "minLength": 1},
            },
        },
        "PredictBatch": {
            "type": "object",
            "required": ["requests"],
            "additionalProperties": False,
            "properties": {
                "requests": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["entities"],
                        "additionalProperties": False,
                        "properties": {
                            "entities": {"type": "array", "minItems": 1, "items": entity},
                            "event_time": {"type": "string", "format": "date-time"},
                            "routing_key": {"type": "string", "minLength": 1},
                            "request_id": {"type": "string", "minLength": 1},
                        },
                    },
                }
            },
        },
    }


def _feedback_schemas(outcome: dict[str, Any]) -> dict[str, Any]:
    """/v1/feedback's request (a list of ``outcome``) and its answer."""
    return {
        "FeedbackAnswer": {
            "type": "object",
            "required": [
                "accepted",
                "matched",
                "unmatched",
                "unmatched_request_ids",
                "by_entity_and_date",
            ],
            "properties": {
                "accepted": {"type": "integer", "description": "outcomes stored"},
                "matched": {
                    "type": "integer",
                    "description": "request ids found among logged predictions",
                },
                "unmatched": {
                    "type": "integer",
                    "description": "request ids not found (stored all the same)",
                },
                "unmatched_request_ids": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "the first 100 of them",
                },
                "by_entity_and_date": {
                    "type": "integer",
                    "description": "outcomes keyed by entity and date",
                },
            },
        },
        "FeedbackRequest": {
            "type": "object",
            "required": ["outcomes"],
            "properties": {"outcomes": {"type": "array", "minItems": 1, "items": outcome}},
        },
    }


def _admin_schemas() -> dict[str, Any]:
    """The admin API's bodies and its route table."""
    return {
        "Weights": {
            "type": "object",
            "required": ["challenger_weight"],
            "properties": {
                "challenger_weight": {"type": "number", "minimum": 0, "maximum": 100},
                "shadow": {"type": "boolean"},
            },
        },
        "Promote": {
            "type": "object",
            "properties": {"version": {"type": "string"}, "reason": {"type": "string"}},
        },
        "Reason": {"type": "object", "properties": {"reason": {"type": "string"}}},
        "Routes": {
            "type": "object",
            "required": ["model", "champion", "challenger", "challenger_weight", "shadow"],
            "properties": {
                "model": {"type": "string"},
                "champion": {"type": "string"},
                "challenger": {"type": ["string", "null"]},
                "challenger_weight": {"type": "number"},
                "shadow": {"type": "boolean"},
            },
        },
    }
