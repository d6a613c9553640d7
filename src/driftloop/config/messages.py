"""Validation errors of ``driftloop.yaml`` as messages a person can act on: where each
value came from (the file or a ``DRIFTLOOP__...`` environment variable), and for an
unknown key the documented key it most likely meant."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from driftloop.config import sections as _sections

__all__ = ["format_validation_error", "known_keys", "suggest_key"]

EnvSources = Mapping[tuple[str, ...], str]  # key path -> environment variable that set it


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def known_keys(root: type[BaseModel], loc: Sequence[str | int]) -> tuple[str, ...]:
    """The keys the section at ``loc`` (a path of keys below ``root``) accepts."""
    model: type[BaseModel] | None = root
    for part in loc:
        if model is None:
            return ()
        field = model.model_fields.get(str(part))
        if field is None:
            continue  # a list index or a union tag: stay on this model
        model = _model_of(field.annotation)
    return tuple(model.model_fields) if model is not None else ()


def suggest_key(root: type[BaseModel], loc: Sequence[str | int]) -> str:
    """' (did you mean X?)' for an unknown key at ``loc``, or ''."""
    choices = known_keys(root, loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _source(loc: Sequence[str | int], env: EnvSources) -> str | None:
    keys = tuple(str(p) for p in loc)
    for n in range(len(keys), 0, -1):
        if keys[:n] in env:
            return env[keys[:n]]
    return None


def format_validation_error(
    path: Path,
    exc: ValidationError,
    env: EnvSources | None = None,
    root: type[BaseModel] | None = None,
) -> str:
    """One line per problem, each naming its key and where its value came from."""
    env = env or {}
    errors = exc.errors()
    sources = [_source(err["loc"], env) for err in errors]
    if all(sources):
        head = f"invalid configuration from the environment ({len(errors)} problem(s)):"
    else:
        head = f"{path}: invalid configuration ({len(errors)} problem(s)):"
    lines = [head]
    for err, source in zip(errors, sources, strict=True):
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            hint = suggest_key(root, err["loc"]) if root is not None else ""
            msg = f"unknown key{hint}; remove it or check its spelling against the documented keys"
        elif err["type"] == "missing":
            msg = "required key is missing"
        elif err["type"] != "value_error" and any(
            str(p) in _sections.SECRET_FIELDS for p in err["loc"]
        ):
            msg = f"{msg} (the value is a secret and is not shown)"
        elif "input" in err and err["type"] not in ("value_error",):
            msg = f"{msg} (got {err['input']!r})"
        if source is not None:
            where = f"{where} (set by the environment variable {source}, not {path.name})"
        lines.append(f"  - {where}: {msg}")
    return "\n".join(lines)
