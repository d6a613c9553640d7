"""Storage helpers: Parquet log segments, the SQLite state database, the quarantine."""

__all__: list[str] = []
