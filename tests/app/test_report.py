"""The loop report: a self-contained page that shows the run and escapes what it is given."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from driftloop.app.report import render_html, render_png, write_report
from driftloop.cli.main import app
from driftloop.loop.timeline import DayRecord, KeyNumber, Timeline, TimelineEvent

HOSTILE = "<script>alert(1)</script>"
START = date(2020, 1, 1)
runner = CliRunner()


def synthetic_timeline(
    n_days: int = 120,
    shift_day: int = 60,
    seed: int = 3,
    extra_versions: int = 0,
    n_events: int | None = None,
) -> Timeline:
    """v1 serves until the shift hurts it, v2 (retrained) canaries and is promoted, v3 (broken)
    canaries and is rolled back. Drift values are None while the window fills."""
    rng = np.random.default_rng(seed)
    shift = START + timedelta(days=shift_day)
    names = ["1", "2", "3", *(str(4 + i) for i in range(extra_versions))]
    days: list[DayRecord] = []
    for i in range(n_days):
        day = START + timedelta(days=i)
        after = i >= shift_day
        if i < shift_day + 15:
            weights = {"1": 1.0}
        elif i < shift_day + 22:
            weights = {"1": 0.8, "2": 0.2}
        elif i < shift_day + 40:
            weights = {"2": 1.0}
        elif i < shift_day + 43:
            weights = {"2": 0.95, "3": 0.05}
        else:
            weights = {"2": 1.0}
        for k, extra in enumerate(names[3:]):  # more versions: small slices late in the run
            if i >= n_days - 20 + 3 * k:
                weights = {**{v: w * 0.9 for v, w in weights.items()}, extra: 0.1}
        base = {"1": 0.22 + (0.15 if after else 0.0), "2": 0.24, "3": 0.6}
        wape = {v: float(base.get(v, 0.25) + rng.normal(0, 0.01)) for v in weights}
        if i == 70:
            wape["1"] = float("nan")  # a day whose labels never came
        served = sum(w * wape[v] for v, w in weights.items()) if i != 70 else None
        frozen = 0.22 + (0.15 if after else 0.0) + float(rng.normal(0, 0.01))
        warm = i >= 7
        days.append(
            DayRecord(
                day=day,
                weights=weights,
                wape=wape,
                served_wape=served,
                frozen_wape=frozen if i != 71 else None,
                max_feature_psi=(0.05 + (0.4 if after else 0.0) + float(rng.uniform(0, 0.03)))
                if warm
                else None,
                drifted_features=3 if after and warm else 0,
                prediction_kl=(0.02 + (0.2 if after else 0.0)) if warm else None,
                accuracy_ratio=(served / 0.22) if warm and served is not None else None,
                label_coverage=0.9 if warm else None,
                champion="1" if i < shift_day + 22 else "2",
                challenger="2" if shift_day + 15 <= i < shift_day + 22 else None,
            )
        )
    at = lambda d, h=23: datetime.combine(START + timedelta(days=d), datetime.min.time()).replace(  # noqa: E731
        hour=h, tzinfo=UTC
    )
    events = [
        TimelineEvent(
            at(shift_day + 8),
            "drift_detected",
            "feature drift: 3 features at act",
            "1",
            {"max_psi": 0.4312345, "features": ["lag_7", "mean_28d"]},
        ),
        TimelineEvent(
            at(shift_day + 10),
            "retrain",
            "retrained on recent data",
            "2",
            {"as_of": "2020-03-11", "rows": 1200, "recency_half_life": None},
        ),
        TimelineEvent(
            at(shift_day + 11),
            "gate",
            "gate passed",
            "2",
            {"wape": 0.241, "champion": 0.37, "passed": True},
        ),
        TimelineEvent(
            at(shift_day + 15, 9), "rollout_step", "canary at 20 %", "2", {"weight": 0.2}
        ),
        TimelineEvent(at(shift_day + 22), "promoted", "v2 is champion", "2", {}),
        TimelineEvent(at(shift_day + 40), "rollout_step", HOSTILE, "3", {"note": HOSTILE}),
        TimelineEvent(
            at(shift_day + 43),
            "rolled_back",
            "canary WAPE 0.6 > 0.26: rolled back",
            "3",
            {"wape": 0.6, "limit": 0.26},
        ),
    ]
    if n_events is not None:
        events = [
            replace(events[i % len(events)], at=at(i * n_days // n_events)) for i in range(n_events)
        ]
    versions = {
        "1": {"parent": "", "as_of": "2019-12-31", "gate": "passed"},
        "2": {"parent": "1", "as_of": "2020-03-11", "gate": "passed", "trigger": "drift"},
        "3": {"parent": "2", "as_of": "2020-04-10", "gate": "forced", "note": HOSTILE},
        **{v: {"parent": "2"} for v in names[3:]},
    }
    return Timeline(
        title="driftloop demo: retail through a demand shock",
        project="demo",
        scenario="A retail demand forecaster is hit by a pandemic-style shift; the loop "
        "detects it, retrains, canaries and promotes. A broken challenger is rolled back.",
        shift_date=shift,
        thresholds={
            "psi_warning": 0.15,
            "psi_act": 0.25,
            "prediction_kl": 0.1,
            "accuracy_ratio": 1.1,
        },
        reference_wape=0.22,
        days=tuple(days),
        events=tuple(events),
        key_numbers=(
            KeyNumber("days from shift to detection", "8", "<= 14", True),
            KeyNumber("served WAPE after recovery / reference", "1.09", "<= 1.10", True),
            KeyNumber("bad challenger traffic share", "5 %", "0 %", False),
            KeyNumber("retrains", "1"),
        ),
        versions=versions,
    )


class Page(HTMLParser):
    """Counts of tags, and the text of table cells, of a parsed page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: dict[str, int] = {}
        self.attrs: list[tuple[str, str | None]] = []
        self.cells: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.attrs.extend(attrs)
        if tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.cells.append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    return page


@pytest.fixture(scope="module")
def timeline() -> Timeline:
    return synthetic_timeline()


@pytest.fixture(scope="module")
def html(timeline: Timeline) -> str:
    return render_html(timeline)


def test_page_is_self_contained_with_four_plots(html: str) -> None:
    page = parse(html)
    assert page.tags["svg"] == 4 and html.count('class="plot"') == 4
    assert page.tags["html"] == page.tags["body"] == 1
    assert "<script" not in html.lower()
    assert "http://" not in html and "https://" not in html
    assert not re.search(r"""(?:src|href)\s*=\s*(?!["']?#)""", html), "only in-page references"
    assert "@import" not in html and "url(" not in html.replace("url(#", "")
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "ids repeat across the inline SVGs"
    assert len(html.encode()) < 2_000_000


def test_key_numbers_show_value_target_and_verdict(html: str) -> None:
    cells = parse(html).cells
    row = cells.index("days from shift to detection")
    assert cells[row + 1 : row + 4] == ["8", "<= 14", "✓ met"]
    row = cells.index("bad challenger traffic share")
    assert cells[row + 1 : row + 4] == ["5 %", "0 %", "✗ not met"]
    row = cells.index("retrains")
    assert cells[row + 1 : row + 4] == ["1", "—", "— no target"]
    assert "&lt;= 14" in html


def test_timeline_strings_are_escaped(timeline: Timeline) -> None:
    hostile = replace(
        timeline,
        title=HOSTILE,
        project=HOSTILE,
        scenario=HOSTILE,
        key_numbers=(KeyNumber(HOSTILE, HOSTILE, HOSTILE, None),),
    )
    html = render_html(hostile)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    cells = parse(html).cells
    assert HOSTILE in cells  # the event message, shown as text
    assert f"note: {HOSTILE}." in cells  # evidence, shown as a sentence of text


def test_event_table_lists_every_event_in_order_with_evidence_as_sentences(
    html: str, timeline: Timeline
) -> None:
    cells = parse(html).cells
    kinds = [c for c in cells if c in {e.kind for e in timeline.events}]
    assert kinds == [e.kind for e in sorted(timeline.events, key=lambda e: e.at)]
    assert "max psi: 0.4312.features: lag_7, mean_28d." in cells  # one <li> per sentence
    assert "as of: 2020-03-11.rows: 1,200.recency half life: none." in cells
    assert "canary traffic: 0.2 %." in cells
    assert "2020-03-09 23:00 UTC" in cells
    assert 'class="kind-rolled_back"' in html


def test_versions_table_has_each_version_and_its_lineage(html: str) -> None:
    table = html[html.index('<table class="versions">') :]
    cells = parse(table[: table.index("</table>") + 8]).cells
    rows = [cells[i : i + 6] for i in range(0, len(cells), 6)]
    assert rows[:3] == [
        ["1", "", "2019-12-31", "passed", "", ""],
        ["2", "1", "2020-03-11", "passed", "drift", ""],
        ["3", "2", "2020-04-10", "forced", "", HOSTILE],
    ]


def test_days_with_missing_values_and_versions_with_one_day_still_plot(
    timeline: Timeline,
) -> None:
    days = list(timeline.days)
    days[100] = replace(
        days[100],
        weights={"1": 0.5, "9": 0.5},
        wape={"1": 0.3, "9": 0.5},
        max_feature_psi=None,
        prediction_kl=None,
        accuracy_ratio=None,
    )
    nothing = [
        replace(
            d,
            served_wape=None,
            frozen_wape=None,
            max_feature_psi=None,
            prediction_kl=None,
            accuracy_ratio=None,
            wape={},
        )
        for d in days
    ]
    for t in (
        replace(timeline, days=tuple(days)),
        replace(timeline, days=tuple(nothing), reference_wape=None, thresholds={}),
    ):
        html = render_html(t)
        assert parse(html).tags["svg"] == 4


@pytest.mark.parametrize("what", ["no days", "no events", "nothing"])
def test_empty_timelines_render_with_a_note(timeline: Timeline, what: str, tmp_path: Path) -> None:
    empty = replace(
        timeline,
        days=() if what != "no events" else timeline.days,
        events=() if what != "no days" else timeline.events,
        key_numbers=() if what == "nothing" else timeline.key_numbers,
        versions={} if what == "nothing" else timeline.versions,
        shift_date=None if what == "nothing" else timeline.shift_date,
        reference_wape=None,
    )
    html = render_html(empty)
    page = parse(html)
    if what == "no events":
        assert page.tags["svg"] == 3 and "No data: the timeline has no events." in html
    else:
        assert page.tags.get("svg", 0) == (1 if what == "no days" else 0)
        assert html.count("No data: the timeline has no days.") == 3
    out = write_report(empty, tmp_path)
    assert out.is_file() and (tmp_path / "report.png").is_file()


def test_png_is_a_summary_figure_of_the_expected_size(timeline: Timeline, tmp_path: Path) -> None:
    from matplotlib.image import imread

    path = tmp_path / "summary.png"
    render_png(timeline, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = imread(path).shape[:2]
    assert (width, height) == (1400, 1000)


def test_write_report_replaces_atomically_and_leaves_no_temporary_files(
    timeline: Timeline, tmp_path: Path
) -> None:
    (tmp_path / "report.html").write_text("old")
    out = write_report(timeline, tmp_path)
    assert out == tmp_path / "report.html"
    assert out.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.png"]


def test_rendering_leaves_matplotlib_settings_alone(timeline: Timeline, tmp_path: Path) -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    render_html(timeline)
    render_png(timeline, tmp_path / "x.png")
    assert dict(matplotlib.rcParams) == before


def nan_equal(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(nan_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(nan_equal(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "__dataclass_fields__") and type(a) is type(b):
        return all(nan_equal(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    return bool(a == b)


def test_timeline_json_round_trip_keeps_gaps(timeline: Timeline, tmp_path: Path) -> None:
    doc = json.loads(json.dumps(timeline.to_json()))  # strict JSON: NaN became null
    assert "NaN" not in json.dumps(timeline.to_json())
    back = Timeline.from_json(doc)
    assert nan_equal(back, timeline)
    assert back.days[70].served_wape is None and math.isnan(back.days[70].wape["1"])
    assert back.days[3].max_feature_psi is None and back.days[71].frozen_wape is None
    assert back.events[0].at == timeline.events[0].at and back.events[0].at.tzinfo is not None
    path = tmp_path / "timeline.json"
    timeline.save(path)
    assert nan_equal(Timeline.load(path), timeline)
    assert render_html(Timeline.load(path)) == render_html(timeline)


def saved_project(tmp_path: Path, timeline: Timeline | None) -> Path:
    from driftloop.app.scaffold import create_project

    project = create_project(
        tmp_path / "p",
        "retail",
        1,
        overrides={"n_stores": 2, "n_products": 2, "days": 150, "shift": {"enabled": False}},
    )
    if timeline is not None:
        project.state_dir.mkdir(exist_ok=True)
        timeline.save(project.state_dir / "timeline.json")
    return project.root


def test_cli_report_renders_the_saved_timeline(timeline: Timeline, tmp_path: Path) -> None:
    root = saved_project(tmp_path, timeline)
    result = runner.invoke(app, ["report", "--project", str(root)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    html = (root / "report.html").read_text(encoding="utf-8")
    assert parse(html).tags["svg"] == 4 and (root / "report.png").is_file()

    out = tmp_path / "elsewhere" / "run.html"
    result = runner.invoke(app, ["report", "-p", str(root), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["html"] == str(out) and summary["events"] == len(timeline.events)
    assert out.read_text(encoding="utf-8") == html and out.with_suffix(".png").is_file()


def test_cli_report_without_a_timeline_says_what_to_run(tmp_path: Path) -> None:
    root = saved_project(tmp_path, None)
    result = runner.invoke(app, ["report", "--project", str(root)])
    assert result.exit_code == 2
    said = " ".join(result.stderr.split())
    assert "`driftloop replay` (your project's history) or `driftloop demo` writes it" in said
    assert not (root / "report.html").exists()

    (root / ".driftloop").mkdir(exist_ok=True)
    (root / ".driftloop" / "timeline.json").write_text('{"title": "half"')
    result = runner.invoke(app, ["report", "--project", str(root)])
    assert result.exit_code == 2 and "is not a readable timeline" in result.stderr
    assert not (root / "report.html").exists()


def test_a_long_run_renders_quickly_into_a_small_page() -> None:
    import time

    long_run = synthetic_timeline(n_days=200, shift_day=80, extra_versions=2, n_events=40)
    assert len({v for d in long_run.days for v in d.weights}) == 5
    started = time.perf_counter()
    html = render_html(long_run)
    elapsed = time.perf_counter() - started
    assert parse(html).tags["svg"] == 4
    assert len(html.encode()) < 1_000_000 and elapsed < 5.0


def test_evidence_reads_as_sentences_with_units_and_nothing_cut() -> None:
    from driftloop.app.report.evidence import evidence_sentences

    detail = "promote needs < 0.1; above it: rollback after 30 requests " * 5
    said = evidence_sentences(
        {
            "elapsed_s": {"value": 172800.0, "threshold": 43200.0, "passed": True, "detail": ""},
            "kl": {"value": 1.2379950107, "threshold": 0.1, "passed": False, "detail": detail},
            "wape_ratio": {"value": None, "threshold": 1.05, "passed": None, "detail": "no labels"},
            "label_coverage": 0.857142,
            "weight": 10.0,
            "at": "2020-03-23T23:59:59+00:00",
        }
    )
    assert said[0] == "time in this step 2.0 days (threshold 12.0 h), holds."
    assert said[1].startswith(
        "KL of the canary's predictions from the stable's 1.238 "
        "(threshold 0.1), fails: promote needs"
    )
    assert said[1].endswith(detail.strip() + ".")  # whole, not cut mid-word
    assert said[2] == (
        "labelled WAPE canary / stable no value yet (threshold 1.05x), not judged: no labels."
    )
    assert said[3:] == ["rows with a label: 85.7 %.", "canary traffic: 10 %."]


def test_accuracy_ratio_keeps_one_reference_across_a_new_champion() -> None:
    from driftloop.app.report.series import series_of

    t = synthetic_timeline()
    days = list(t.days)
    # v2 becomes champion with a holdout error twice v1's: the loop's own ratio halves
    for i, d in enumerate(days):
        own = 1.3 if d.champion == "1" else 0.65
        days[i] = replace(d, accuracy_ratio=own if d.accuracy_ratio is not None else None)
    versions = {
        **t.versions,
        "1": {**t.versions["1"], "holdout WAPE": "0.2000"},
        "2": {**t.versions["2"], "holdout WAPE": "0.4000"},
    }
    s = series_of(replace(t, days=tuple(days), versions=versions))
    assert s.fixed_reference == ("1", 0.2)
    judged = s.fixed_ratio[np.isfinite(s.fixed_ratio)]
    assert np.allclose(judged, 1.3)  # the same error all along: no recovery drawn
    assert np.nanmin(s.ratio) == pytest.approx(0.65)
    html = render_html(replace(t, days=tuple(days), versions=versions))
    assert "the first champion&#39;s (v1) holdout WAPE 0.200" in html


def test_windows_the_monitor_did_not_judge_are_drawn_as_not_judged() -> None:
    from driftloop.app.report.series import series_of

    t = synthetic_timeline()
    days = [replace(d, drift_judged=i >= 20, accuracy_judged=i >= 30) for i, d in enumerate(t.days)]
    t = replace(t, days=tuple(days))
    s = series_of(t)
    assert not np.isfinite(s.psi[:20]).any() and np.isfinite(s.psi[20:]).any()
    assert not np.isfinite(s.fixed_ratio[:30]).any() and not np.isfinite(s.ratio[:30]).any()
    html = render_html(t)
    assert "not judged" in html and "did not judge" in html
    assert Timeline.from_json(t.to_json()).days[0].drift_judged is False


def test_the_loops_line_is_the_one_that_stands_out(html: str) -> None:
    assert "served by the loop (traffic mix)" in html
