"""Importing Feast safely: no telemetry, no hijacked prometheus-client."""

from __future__ import annotations

import os
import warnings
from typing import Any

__all__ = ["import_feast"]

# Feast writes anonymous usage statistics unless told not to; driftloop never phones home.
os.environ.setdefault("FEAST_USAGE", "False")

_PROMETHEUS_ENV = ("PROMETHEUS_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR")


def import_feast() -> Any:
    """Import Feast without letting it switch prometheus-client to multiprocess mode.

    ``feast.metrics`` sets PROMETHEUS_MULTIPROC_DIR to a temp folder at import time,
    which would make every metric in this process (driftloop's server included) write
    files there. prometheus-client picks its value store when it is first imported, so
    import it first, then undo Feast's environment change.
    """
    import prometheus_client  # noqa: F401  (before Feast: fixes the in-process value store)

    before = {name: os.environ.get(name) for name in _PROMETHEUS_ENV}
    import feast
    import feast.metrics

    # ibis (under Feast's DuckDB offline store) calls a DuckDB API that DuckDB deprecated;
    # the call still works and users cannot act on the warning.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ibis\.")
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
    return feast
