"""A user's own table: read it, infer its schema, and prepare it as a project stores it."""

from __future__ import annotations

from driftloop.tabular.infer import (
    ColumnRole,
    TableSchema,
    Task,
    infer_schema,
    parse_duration,
    prepare_table,
    read_table,
)

__all__ = [
    "ColumnRole",
    "TableSchema",
    "Task",
    "infer_schema",
    "parse_duration",
    "prepare_table",
    "read_table",
]
