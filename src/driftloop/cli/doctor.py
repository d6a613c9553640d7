"""``driftloop doctor``: the MLOps maturity level a project reaches, and what the next needs."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from driftloop.cli.common import JsonOption, ProjectOption, console, emit_json, handle_errors

if TYPE_CHECKING:
    from driftloop.app.doctor import Diagnosis

__all__ = ["doctor"]


def _tables(diagnosis: Diagnosis) -> list[Table]:
    """One table per level, its checks in order."""
    from driftloop.app.doctor import LEVEL_NAMES

    tables = []
    for level in sorted({c.level for c in diagnosis.checks}):
        checks = [c for c in diagnosis.checks if c.level == level]
        passed = sum(c.passed for c in checks)
        table = Table(
            title=f"level {level}, {LEVEL_NAMES[level]}: {passed}/{len(checks)} pass",
            title_justify="left",
        )
        table.add_column("check", no_wrap=True)
        table.add_column("", no_wrap=True)
        table.add_column("seen", overflow="fold", ratio=3)
        table.add_column("fix", overflow="fold", ratio=2)
        for c in checks:
            table.add_row(
                c.id,
                "[green]pass[/]" if c.passed else "[red]FAIL[/]",
                escape(c.seen),
                "" if c.passed else escape(c.fix),
            )
        tables.append(table)
    return tables


def doctor(project: ProjectOption = Path("."), json_out: JsonOption = False) -> None:
    """Which MLOps maturity level (0-3) the project's config and state reach (a report:
    exit 0 whatever the level)."""
    from driftloop.app.doctor import LEVEL_NAMES, diagnose
    from driftloop.project import Project

    with handle_errors():
        diagnosis = diagnose(Project.load(project))
        if json_out:
            emit_json(diagnosis)
            return
        console.print(
            f"[bold]maturity level {diagnosis.level}[/]: {diagnosis.level_name}", highlight=False
        )
        for table in _tables(diagnosis):
            console.print(table)
        nxt = diagnosis.next_level
        if nxt is None:
            console.print("[green]every check passes: nothing missing[/]")
            return
        console.print(f"to reach level {nxt} ({LEVEL_NAMES[nxt]}):", highlight=False)
        for c in diagnosis.next_level_missing:
            console.print(
                f"  - {escape(c.title)}: {escape(c.fix)}", highlight=False, soft_wrap=True
            )
