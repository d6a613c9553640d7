"""Quarantine: damaged files of the project's state moved aside, with a record of why.

A log segment or a per-day state file that cannot be read (a bad disk, a partial copy, a
full disk) would stop every check that reads its folder. Its reader moves it instead to
``<state>/quarantine/<folder>/<day>/<name>`` and appends one line to
``<state>/quarantine/records.jsonl`` (when, which file, where it went, why); the checks go
on with the rest. The file itself is kept, never deleted: restore it by moving it back.

``quarantine_file`` is the hook for any owner of files under the state directory;
``read_or_quarantine`` wraps a reader of one file. ``records`` reads the record back
(``driftloop monitor``, ``driftloop doctor``, the loop's events, the server's
``driftloop_segments_quarantined_total``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "QUARANTINE_DIR",
    "RECORDS",
    "QuarantineCollector",
    "QuarantineRecord",
    "damaged_parquet",
    "damaged_segments",
    "quarantine_damaged",
    "quarantine_file",
    "read_or_quarantine",
    "records",
]

QUARANTINE_DIR = "quarantine"
RECORDS = "records.jsonl"
PARQUET_MAGIC = b"PAR1"
logger = logging.getLogger("driftloop.storage.quarantine")
_lock = threading.Lock()
# Segments that looked whole, with the (inode, size, mtime) they had: a file rewritten,
# cut or replaced since changes one of them and is read again.
_whole: dict[str, tuple[int, int, int]] = {}
T = TypeVar("T")


@dataclass(frozen=True)
class QuarantineRecord:
    """One file moved aside."""

    at: str  # ISO 8601, UTC
    log: str  # the folder it came from under the state directory: predictions, feedback ...
    source: str  # where it was
    moved_to: str | None  # where it is now (None: it could not be moved, only skipped)
    reason: str
    size_bytes: int | None


def _state_dir(path: Path, state_dir: Path | None) -> Path:
    """The state directory: given, or the parent of the file's log folder
    (``<state>/<log>/<day>/<file>``)."""
    return state_dir if state_dir is not None else path.parent.parent.parent


def quarantine_file(path: Path, reason: str, state_dir: Path | None = None) -> QuarantineRecord:
    """Move ``path`` to the quarantine folder and record why (never raises for the move:
    a file that cannot be moved is recorded as skipped, ``moved_to`` None)."""
    state = _state_dir(path, state_dir)
    try:
        relative = path.resolve().relative_to(state.resolve())
    except ValueError:
        relative = Path(path.name)
    log = relative.parts[0] if len(relative.parts) > 1 else "state"
    target = state / QUARANTINE_DIR / relative
    try:
        size: int | None = path.stat().st_size
    except OSError:
        size = None
    moved: str | None = str(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():  # the same name quarantined before: keep both
            target = target.with_name(f"{target.name}.{datetime.now(UTC):%Y%m%dT%H%M%S%f}")
            moved = str(target)
        os.replace(path, target)
    except FileNotFoundError:  # another reader moved it first: its record stands
        return QuarantineRecord(
            datetime.now(UTC).isoformat(), log, str(path), None, f"{reason}; already moved", size
        )
    except OSError as exc:
        moved = None
        reason = f"{reason}; could not be moved ({exc}), skipped"
    record = QuarantineRecord(datetime.now(UTC).isoformat(), log, str(path), moved, reason, size)
    folder = state / QUARANTINE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    line = json.dumps(asdict(record)) + "\n"
    with _lock, open(folder / RECORDS, "a", encoding="utf-8") as out:
        out.write(line)
        out.flush()
        os.fsync(out.fileno())
    logger.warning("quarantined %s: %s (moved to %s)", path, reason, moved or "nowhere")
    return record


def read_or_quarantine(
    path: Path, read: Callable[[Path], T], state_dir: Path | None = None
) -> T | None:
    """``read(path)``, or None after moving the file aside when it cannot be read."""
    try:
        return read(path)
    except Exception as exc:  # whatever the reader raises, the file is what is damaged
        quarantine_file(path, f"{type(exc).__name__}: {exc}", state_dir)
        return None


def records(state_dir: Path) -> list[QuarantineRecord]:
    """Every file quarantined under ``state_dir``, oldest first (a torn last line skipped)."""
    path = state_dir / QUARANTINE_DIR / RECORDS
    if not path.is_file():
        return []
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            found.append(QuarantineRecord(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return found


def damaged_parquet(path: Path) -> str | None:
    """Why a Parquet file is plainly damaged (too short, no magic bytes at either end,
    unreadable), from its first and last bytes only; None when those look whole."""
    try:
        size = path.stat().st_size
        if size < 12:
            return f"{size} bytes: too short for a Parquet file"
        with open(path, "rb") as fh:
            head = fh.read(4)
            fh.seek(-4, os.SEEK_END)
            tail = fh.read(4)
    except OSError as exc:
        return f"cannot be read: {exc}"
    if head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
        return "no Parquet magic bytes at its start or end (overwritten or cut short)"
    return None


def damaged_segments(
    state_dir: Path, logs: tuple[str, ...] = ("predictions", "feedback")
) -> list[tuple[Path, str]]:
    """Every log segment under ``state_dir`` that is plainly damaged, with why (first and
    last bytes, :func:`damaged_parquet`; eight bytes a file, read again only once its inode,
    size or mtime changed). Reads only."""
    found, whole = [], {}
    for log in logs:
        folder = state_dir / log
        if folder.is_dir():
            for path in sorted(folder.rglob("part-*.parquet")):
                try:
                    st = path.stat()
                except OSError:
                    st = None
                seen = None if st is None else (st.st_ino, st.st_size, st.st_mtime_ns)
                if seen is not None and _whole.get(str(path)) == seen:
                    whole[str(path)] = seen
                    continue  # looked whole and unchanged since: its bytes are the same
                reason = damaged_parquet(path)
                if reason is not None:
                    found.append((path, reason))
                elif seen is not None:
                    whole[str(path)] = seen
    prefixes = tuple(str(state_dir / log) + os.sep for log in logs)
    with _lock:  # forget this project's files that are gone; keep other projects'
        for name in [n for n in list(_whole) if n.startswith(prefixes) and n not in whole]:
            _whole.pop(name, None)
        _whole.update(whole)
    return found


def quarantine_damaged(state_dir: Path) -> list[QuarantineRecord]:
    """Move aside every plainly damaged log segment: monitoring reads stored days, so a
    segment damaged after it was folded would otherwise sit in place until a rebuild."""
    return [
        quarantine_file(path, reason, state_dir) for path, reason in damaged_segments(state_dir)
    ]


class QuarantineCollector(Collector):
    """``driftloop_segments_quarantined_total{log}``, counted from the durable record (so
    the count survives restarts and includes files quarantined by other processes)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "driftloop_segments_quarantined",
            "Damaged log segments and state files moved to the quarantine folder.",
            labels=["log"],
        )
        counts: dict[str, int] = {}
        for record in records(self.state_dir):
            counts[record.log] = counts.get(record.log, 0) + 1
        for log, count in sorted(counts.items()):
            family.add_metric([log], float(count))
        yield family
