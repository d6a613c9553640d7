"""``driftloop monitor``: drift and accuracy per version, per event-time window."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from driftloop.cli.common import (
    JsonOption,
    ProjectOption,
    console,
    emit_json,
    err_console,
    handle_errors,
    parse_day,
    working,
)

if TYPE_CHECKING:
    from driftloop.monitoring.monitor import MonitorReport
    from driftloop.project import Project

__all__ = ["monitor"]

LEVEL_STYLE = {"act": "bold red", "warning": "red", "notice": "yellow", "none": "green"}


def _num(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3f}"


def _print_quarantined(state: Path, before: int, out: Console) -> None:
    """The files this run moved aside, and how many are in quarantine in all."""
    from driftloop.storage.quarantine import QUARANTINE_DIR, records

    found = records(state)
    for r in found[before:]:
        out.print(
            f"[yellow]quarantined[/] {r.source}: {r.reason}; moved to "
            f"{r.moved_to or 'nowhere (skipped)'}",
            highlight=False,
        )
    if found:
        out.print(
            f"[yellow]{len(found)} damaged file(s) quarantined so far[/] (records: "
            f"{state / QUARANTINE_DIR / 'records.jsonl'}); "
            "the checks use the remaining data",
            highlight=False,
        )


def _write_rules(proj: Project, rules: Path) -> None:
    """Prometheus alerting rules for the project's thresholds, written to ``rules``."""
    from driftloop.monitoring.alerts import AlertThresholds, render_rules
    from driftloop.monitoring.assess import ACCURACY_METRICS

    metric = ACCURACY_METRICS[proj.config.training.task]
    thresholds = AlertThresholds.from_monitoring(proj.config.monitoring, accuracy_metric=metric)
    text = render_rules(thresholds)
    rules.expanduser().resolve().write_text(text, encoding="utf-8")
    console.print(f"wrote alerting rules to {rules} (check: promtool check rules {rules})")


def _print_report(report: MonitorReport) -> None:
    """The latest window's table per version, its accuracy, and the alerts."""
    from driftloop.monitoring.assess import metric_label

    latest = report.latest
    if latest is None or not latest.versions:
        console.print("no predictions in the latest window: nothing to judge")
        return
    for v in latest.versions:
        table = Table(
            title=f"v{v.version}, {latest.start} to {latest.end} (exclusive): {v.rows:,} rows"
        )
        for column in ("column", "rows", "PSI", "JS", "KL", "level"):
            table.add_column(column, justify="left" if column == "column" else "right")
        for d in (*v.features, v.prediction):
            table.add_row(
                d.name,
                f"{d.rows:,}",
                _num(d.psi),
                _num(d.js),
                _num(d.kl),
                d.level,
                style=LEVEL_STYLE.get(d.level),
            )
        console.print(table)
        if v.reason:
            console.print(f"  [yellow]cannot judge[/]: {v.reason}", highlight=False)
        if v.accuracy is not None:
            a = v.accuracy
            console.print(
                f"  accuracy: {metric_label(a.metric)} {_num(a.error)} vs holdout "
                f"{_num(a.reference)} "
                f"(ratio {_num(a.ratio)}), {a.labeled:,} labels, coverage {a.coverage:.0%}: "
                f"{a.state}"
            )
    if report.alerts:
        for version, alert in report.alerts:
            console.print(
                f"[red]{alert.severity}[/] {alert.kind} (v{version}): {alert.message}",
                highlight=False,
            )
    else:
        console.print("[green]no alerts[/]")


def monitor(
    project: ProjectOption = Path("."),
    since: Annotated[str | None, typer.Option(help="First event day (YYYY-MM-DD).")] = None,
    until: Annotated[str | None, typer.Option(help="Day after the last (YYYY-MM-DD).")] = None,
    window_days: Annotated[
        int | None, typer.Option(min=1, help="Window length (default from config).")
    ] = None,
    rules: Annotated[
        Path | None,
        typer.Option(help="Write Prometheus alerting rules for this project's thresholds here."),
    ] = None,
    rebuild: Annotated[
        bool,
        typer.Option(
            help="Fold the whole logs again into the stored days first "
            "(.driftloop/monitor_days.db)."
        ),
    ] = False,
    json_out: JsonOption = False,
) -> None:
    """Feature drift, prediction drift and delayed-label accuracy of each served version."""
    from driftloop.features.layout import project_layout
    from driftloop.monitoring.assess import ACCURACY_METRICS
    from driftloop.monitoring.monitor import monitor_project, open_day_store, registry_info
    from driftloop.project import Project
    from driftloop.registry import open_registry
    from driftloop.storage.quarantine import quarantine_damaged, records

    with handle_errors():
        proj = Project.load(project)
        if rules is not None:
            _write_rules(proj, rules)
            return
        before = len(records(proj.state_dir))
        quarantine_damaged(proj.state_dir)
        registry = open_registry(proj)
        keys = project_layout(proj).entity_keys
        if rebuild:
            info = registry_info(registry, ACCURACY_METRICS[proj.config.training.task])
            with working("folding the logs into the stored days again", json_out):
                folded = open_day_store(proj, keys).rebuild(lambda version: info(version)[0])
            if not json_out:
                console.print(f"folded {folded} log segment(s) into the stored days")
        with working("merging the stored days, judging each window", json_out):
            report = monitor_project(
                proj,
                registry,
                parse_day(since, "--since"),
                parse_day(until, "--until"),
                window_days,
                keys=keys,
            )
        _print_quarantined(proj.state_dir, before, err_console if json_out else console)
        if json_out:
            emit_json(report)
            return
        _print_report(report)
