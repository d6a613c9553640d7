"""Shared pieces of the command line: options, output, error handling, dates."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from driftloop.errors import DriftloopError, UsageError

__all__ = [
    "JsonOption",
    "PlainProgress",
    "ProjectOption",
    "console",
    "emit_json",
    "err_console",
    "handle_errors",
    "installed_commands",
    "parse_day",
    "step_progress",
    "to_jsonable",
    "working",
]

console = Console()
err_console = Console(stderr=True)

ProjectOption = Annotated[
    Path,
    typer.Option(
        "--project",
        "-p",
        envvar="DRIFTLOOP_PROJECT",
        help="Project folder (default: the current folder).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn driftloop errors into one clear message and the documented exit code."""
    try:
        yield
    except DriftloopError as exc:
        err_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(code=exc.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(code=130) from None


HEARTBEAT_S = 30.0
"""Without a terminal, a long step repeats its line this often (seconds) while it runs."""


class PlainProgress:
    """Progress as plain lines on stderr, for logs and pipes: one line when a step starts,
    the same line again every ``every_s`` seconds while it runs, one when all is done."""

    def __init__(self, total: int, every_s: float = HEARTBEAT_S, out: Console | None = None):
        self.total = total
        self.every_s = every_s
        self.out = out or err_console
        self.started = time.monotonic()
        self.index = 0
        self.name = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _line(self, name: str, note: str = "") -> None:
        elapsed = time.monotonic() - self.started
        where = f"[{self.index}/{self.total}] " if self.total > 1 else ""
        self.out.print(
            f"{where}{name}{note} ({elapsed:.0f} s)", markup=False, highlight=False, soft_wrap=True
        )

    def step(self, name: str) -> None:
        with self._lock:
            self.index += 1
            self.name = name
            self._line(name)

    def heartbeat(self) -> None:
        """The running step's line again (the background thread calls it every ``every_s``)."""
        with self._lock:
            self._line(self.name, ": still running")

    def _beat(self) -> None:
        while not self._stop.wait(self.every_s):
            self.heartbeat()

    def __enter__(self) -> PlainProgress:
        self._thread = threading.Thread(target=self._beat, name="progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if exc[0] is None:
            self.index = self.total
            self._line("done")


@contextmanager
def step_progress(steps: Sequence[str], disable: bool) -> Iterator[Callable[[str], None]]:
    """Progress over named steps; yields the callback that starts a step. A Rich bar on a
    terminal, plain lines on stderr otherwise (``disable``: nothing at all)."""
    if disable:
        yield lambda _name: None
        return
    if not console.is_terminal:
        with PlainProgress(len(steps)) as plain:
            yield plain.step
        return
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
    )
    with progress:
        task = progress.add_task(steps[0] if steps else "", total=len(steps))
        started: list[str] = []

        def step(name: str) -> None:
            if started:
                progress.advance(task)
            started.append(name)
            progress.update(task, description=name)

        yield step
        progress.advance(task)
        progress.update(task, description="done")


@contextmanager
def working(what: str, disable: bool = False) -> Iterator[None]:
    """One long step: a spinner on a terminal, plain lines on stderr otherwise."""
    if disable:
        yield
    elif console.is_terminal:
        with console.status(what):
            yield
    else:
        with PlainProgress(1) as plain:
            plain.step(what)
            yield


def installed_commands(names: Sequence[str] = ("driftloop", "mlflow")) -> tuple[str, ...]:
    """How to call each command from any shell: its bare name when PATH finds this very
    install (an activated venv), else the full path beside this Python."""
    bin_dir = Path(sys.executable).parent  # a venv's bin/ (sys.executable is not resolved)
    out = []
    for name in names:
        here = bin_dir / name
        found = shutil.which(name)
        same = found is not None and Path(found).resolve() == here.resolve()
        out.append(str(here) if here.is_file() and not same else name)
    return tuple(out)


def parse_day(value: str | None, option: str) -> date | None:
    """Parse ``YYYY-MM-DD`` (or an ISO timestamp) given for ``option``."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        raise UsageError(f"{option} {value!r} is not a date: write it as YYYY-MM-DD") from None


def to_jsonable(value: Any) -> Any:
    """Dataclasses, dates, paths and numpy scalars as JSON-friendly values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in dir(type(value)):
            if isinstance(getattr(type(value), name, None), property):
                out[name] = to_jsonable(getattr(value, name))
        return out
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        return to_jsonable(value.item())
    return value


def emit_json(payload: Any) -> None:
    """Write ``payload`` as JSON on stdout."""
    sys.stdout.write(json.dumps(to_jsonable(payload), indent=2) + "\n")
