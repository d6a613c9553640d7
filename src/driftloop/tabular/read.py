"""Read a user's table (Parquet, CSV or a DuckDB query) and parse durations from the CLI.

Every failure is a :class:`~driftloop.errors.DataError` that names the source and the fix.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pandas as pd

from driftloop.errors import DataError

__all__ = ["parse_duration", "read_table"]

_QUERY = re.compile(r"^\s*(select|with|from)\s", re.IGNORECASE)
_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz")
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNIT_S = (7 * 86_400, 86_400, 3_600, 60, 1)


def read_table(source: str, base: Path | None = None) -> pd.DataFrame:
    """A .parquet / .pq / .csv / .csv.gz file, or a DuckDB query (SELECT/WITH/FROM ...).

    Relative paths, in ``source`` or inside the query, are read from ``base`` when given.
    """
    if _QUERY.match(source):
        frame = _run_query(source, base)
        where = "the --data query"
    else:
        path = Path(source).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        frame = _read_file(path)
        where = str(path)
    if len(frame) == 0:
        raise DataError(f"{where} has no rows: point --data at a table with data")
    return frame


def _read_file(path: Path) -> pd.DataFrame:
    """Read one Parquet or CSV file; DataError on a missing, unknown or unreadable file."""
    name = path.name.lower()
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise DataError(f"data file {path} {what}: check the --data path")
    if name.endswith(_PARQUET):
        kind = "Parquet"
    elif name.endswith(_CSV):
        kind = "CSV"
    else:
        raise DataError(
            f"data file {path} has an extension driftloop cannot read: use a .parquet, .pq, "
            f".csv or .csv.gz file, or a DuckDB query such as \"SELECT * FROM '{path}'\""
        )
    try:
        if kind == "Parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"data file {path} is empty: write a header row and data") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        # pyarrow's ArrowInvalid and pandas' ParserError are ValueErrors.
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"data file {path} is not readable as {kind} ({reason}): check the file is "
            f"complete and really {kind} (CSV must be UTF-8 with a header row)"
        ) from exc


def _run_query(sql: str, base: Path | None) -> pd.DataFrame:
    """Run a DuckDB query in a private in-memory database; DataError if it fails."""
    import duckdb

    connection = duckdb.connect(":memory:")
    try:
        connection.execute("SET TimeZone = 'UTC'")
        if base is not None:
            quoted = str(base).replace("'", "''")
            connection.execute(f"SET file_search_path = '{quoted}'")
        return connection.execute(sql).df()
    except duckdb.Error as exc:
        reason = str(exc).strip().splitlines()[0]
        raise DataError(
            f"the --data query failed ({reason}): fix the SQL; try it in the duckdb shell first"
        ) from exc
    finally:
        connection.close()


def parse_duration(text: str, field: str) -> timedelta:
    """'1d', '36h', '30m', '2w', '90s', '1d12h' as a timedelta; DataError naming ``field``."""
    cleaned = text.strip().lower()
    match = _DURATION.match(cleaned) if cleaned else None
    if match is None:
        raise DataError(
            f"{field} {text!r} is not a duration: write whole numbers with units w, d, h, m, s "
            "in that order, e.g. 1d, 36h, 1d12h, 2w"
        )
    seconds = sum(int(g) * unit for g, unit in zip(match.groups(), _UNIT_S, strict=True) if g)
    return timedelta(seconds=seconds)
