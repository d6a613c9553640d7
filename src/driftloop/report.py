"""The report of a loop run: one self-contained HTML page (and a PNG summary) from a Timeline.

The page has no JavaScript and references nothing outside itself: the CSS is inline and
every plot is an SVG drawn by matplotlib and written into the page. Every string that
comes from the timeline goes through jinja2's autoescaping (and matplotlib's own escaping
inside the SVG), so a message holding markup shows as text.

matplotlib is used without pyplot: each figure gets its own canvas (SVG or Agg) and all
settings are scoped with ``rc_context``, so rendering changes no global state.
"""

from __future__ import annotations

import io
import math
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from driftloop import __version__
from driftloop.loop.timeline import DayRecord, Timeline, TimelineEvent

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

__all__ = ["SMOOTHING_DAYS", "render_html", "render_png", "write_report"]

SMOOTHING_DAYS = 7
"""Trailing window (days) of the smoothed accuracy lines."""

_RC: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # text as <text>, not glyph paths: a fraction of the size
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Arial", "Helvetica"],
    "font.size": 9.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8.0,
    "legend.frameon": False,
    "path.simplify": True,
}
_SVG_METADATA: dict[str, Any] = {"Creator": None, "Date": None, "Format": None, "Type": None}
_VERSION_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#d62728",
)
_KIND_STYLE: dict[str, tuple[str, str]] = {  # kind -> (color, marker)
    "drift_detected": ("#ff7f0e", "^"),
    "retrain": ("#1f77b4", "o"),
    "trained": ("#1f77b4", "o"),
    "gate": ("#9467bd", "s"),
    "rollout_start": ("#7f7f7f", ">"),
    "rollout_step": ("#7f7f7f", "d"),
    "promoted": ("#2ca02c", "*"),
    "rolled_back": ("#d62728", "X"),
    "rollback": ("#d62728", "X"),
    "aborted": ("#d62728", "X"),
}
_OTHER_KIND_COLORS = ("#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79", "#637939")


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class _Series:
    """The timeline's days as aligned arrays (NaN where a value is missing)."""

    days: list[date]
    x: np.ndarray  # the days as matplotlib date numbers
    versions: list[str]
    weights: dict[str, np.ndarray]  # version -> share 0..1 (0 when absent)
    wape: dict[str, np.ndarray]  # version -> WAPE, NaN on days it did not serve
    served: np.ndarray
    frozen: np.ndarray
    scheduled: np.ndarray
    psi: np.ndarray
    kl: np.ndarray
    ratio: np.ndarray


def _f(value: float | None) -> float:
    if value is None:
        return math.nan
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def _version_order(days: Sequence[DayRecord], lineage: Iterable[str]) -> list[str]:
    """Versions by the day they first served, then any known only from the lineage."""
    seen: dict[str, None] = {}
    for day in days:
        for name, share in day.weights.items():
            if _f(share) > 0:
                seen.setdefault(name, None)
    for day in days:
        for name in (*day.weights, *day.wape):
            seen.setdefault(name, None)
    for name in lineage:
        seen.setdefault(name, None)
    return list(seen)


def _series(timeline: Timeline) -> _Series:
    days = sorted(timeline.days, key=lambda d: d.day)
    versions = _version_order(days, timeline.versions)
    weights = {
        v: np.nan_to_num([max(_f(d.weights.get(v)), 0.0) for d in days], nan=0.0) for v in versions
    }
    wape = {
        v: np.array(
            [_f(d.wape.get(v)) if weights[v][i] > 0 else math.nan for i, d in enumerate(days)]
        )
        for v in versions
    }
    return _Series(
        days=[d.day for d in days],
        x=_datenum([d.day for d in days]),
        versions=versions,
        weights=weights,
        wape=wape,
        served=np.array([_f(d.served_wape) for d in days]),
        frozen=np.array([_f(d.frozen_wape) for d in days]),
        scheduled=np.array([_f(d.scheduled_wape) for d in days]),
        psi=np.array([_f(d.max_feature_psi) for d in days]),
        kl=np.array([_f(d.prediction_kl) for d in days]),
        ratio=np.array([_f(d.accuracy_ratio) for d in days]),
    )


def _datenum(values: Sequence[date | datetime]) -> np.ndarray:
    """Dates (or times, aware ones in UTC) as matplotlib date numbers."""
    from matplotlib.dates import date2num

    stamps = [_naive_utc(v) if isinstance(v, datetime) else v for v in values]
    return np.asarray(date2num(np.array(stamps, dtype="datetime64[s]")), dtype=float)  # type: ignore[no-untyped-call]


def _smooth(values: np.ndarray, window: int = SMOOTHING_DAYS) -> np.ndarray:
    """Trailing mean over the last ``window`` days' known values; NaN stays NaN (a gap)."""
    known = np.isfinite(values)
    filled = np.where(known, values, 0.0)
    sums = np.convolve(filled, np.ones(window), mode="full")[: len(values)]
    counts = np.convolve(known.astype(float), np.ones(window), mode="full")[: len(values)]
    out = np.full(len(values), math.nan)
    np.divide(sums, counts, out=out, where=known & (counts > 0))
    return out


def _label(version: str) -> str:
    return f"v{version}" if version.isdigit() else version


def _mpl(text: str) -> str:
    """A timeline string as literal matplotlib text: a ``$`` must not start mathtext."""
    return text.replace("$", r"\$")


def _colors(versions: Sequence[str]) -> dict[str, str]:
    return {v: _VERSION_COLORS[i % len(_VERSION_COLORS)] for i, v in enumerate(versions)}


def _naive_utc(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


def _events(timeline: Timeline) -> list[TimelineEvent]:
    return sorted(timeline.events, key=lambda e: _naive_utc(e.at))


def _kind_styles(kinds: Iterable[str]) -> dict[str, tuple[str, str]]:
    styles: dict[str, tuple[str, str]] = {}
    others = 0
    for kind in kinds:
        if kind in styles:
            continue
        if kind in _KIND_STYLE:
            styles[kind] = _KIND_STYLE[kind]
        else:
            styles[kind] = (_OTHER_KIND_COLORS[others % len(_OTHER_KIND_COLORS)], "D")
            others += 1
    return styles


# --------------------------------------------------------------------------- drawing


def _no_data(ax: Axes, what: str) -> None:
    ax.text(
        0.5,
        0.5,
        f"no data: {what}",
        transform=ax.transAxes,
        ha="center",
        va="center",
        color="#777777",
    )


def _shift_line(ax: Axes, timeline: Timeline, label: bool = True) -> None:
    if timeline.shift_date is not None:
        ax.axvline(
            float(_datenum([timeline.shift_date])[0]),
            color="#d62728",
            linestyle=":",
            linewidth=1.2,
            label="shift" if label else None,
        )


def _legend(ax: Axes, ncol: int) -> None:
    if ax.get_legend_handles_labels()[0]:  # an empty legend is a warning
        ax.legend(loc="upper left", ncol=ncol)


def _line(ax: Axes, x: np.ndarray, y: np.ndarray, **style: Any) -> None:
    """Plot with gaps at NaN, and a dot for any point with no known neighbour."""
    ax.plot(x, y, **style)
    known = np.isfinite(y)
    if known.any():
        before = np.concatenate(([False], known[:-1]))
        after = np.concatenate((known[1:], [False]))
        alone = known & ~before & ~after
        if alone.any():
            ax.plot(
                x[alone],
                y[alone],
                linestyle="none",
                marker="o",
                markersize=3,
                color=style.get("color"),
            )


def _draw_accuracy(ax: Axes, timeline: Timeline, s: _Series) -> None:
    colors = _colors(s.versions)
    anything = False
    ref = _f(timeline.reference_wape)
    if math.isfinite(ref):
        ax.axhspan(
            ref, ref * 1.10, color="#2ca02c", alpha=0.12, linewidth=0, label="reference +10 %"
        )
        which = "pre-shift" if timeline.shift_date else "v1 holdout"
        ax.axhline(ref, color="#2ca02c", linewidth=1.0, label=f"reference ({which}) {ref:.3f}")
    if np.isfinite(s.served).any():
        anything = True
        ax.plot(s.x, s.served, color="#333333", linewidth=0.6, alpha=0.35, label="served, daily")
        # wide and beneath the versions' lines, which stay visible where one version serves
        _line(
            ax,
            s.x,
            _smooth(s.served),
            color="#000000",
            linewidth=3.5,
            alpha=0.45,
            label="served mix",
        )
    for v in s.versions:
        if np.isfinite(s.wape[v]).any():
            anything = True
            _line(
                ax, s.x, _smooth(s.wape[v]), color=colors[v], linewidth=1.4, label=_mpl(_label(v))
            )
    baselines = (
        (s.frozen, "#555555", "--", "frozen first champion (control)"),
        (s.scheduled, "#1f77b4", ":", "retrained on a fixed schedule"),
    )
    for values, color, style, label in baselines:
        if np.isfinite(values).any():
            anything = True
            _line(ax, s.x, _smooth(values), color=color, linewidth=1.4, linestyle=style,
                  label=label)  # fmt: skip
    _shift_line(ax, timeline)
    if not anything:
        _no_data(ax, f"no {timeline.accuracy_metric} was recorded")
    ax.set_ylabel(f"{timeline.accuracy_metric} (lower is better)")
    title = f"Accuracy over time ({SMOOTHING_DAYS}-day trailing mean)"
    served = s.served[np.isfinite(s.served)]
    if math.isfinite(ref) and served.size:
        # A broken version's WAPE can be many times the rest: keep the served range readable.
        top = max(float(np.max(_smooth(s.served)[np.isfinite(_smooth(s.served))])), ref) * 1.25
        if any(np.nanmax(s.wape[v], initial=0.0) > top for v in s.versions):
            ax.set_ylim(0, top)
            title += "; lines above the top are cut"
    ax.set_title(title, loc="left")
    _legend(ax, ncol=3)


def _draw_weights(ax: Axes, timeline: Timeline, s: _Series) -> None:
    colors = _colors(s.versions)
    shown = [v for v in s.versions if s.weights[v].any()]
    if shown:
        ax.stackplot(
            s.x,
            *[s.weights[v] * 100.0 for v in shown],
            labels=[_mpl(_label(v)) for v in shown],
            colors=[colors[v] for v in shown],
            alpha=0.85,
            step="post",
        )
    else:
        _no_data(ax, "no traffic weights were recorded")
    _shift_line(ax, timeline, label=False)
    ax.set_ylim(0, 100)
    ax.set_ylabel("traffic %")
    ax.set_title("Traffic weight per version", loc="left")
    if shown:
        _legend(ax, ncol=min(len(shown), 6))


def _threshold(ax: Axes, value: float | None, label: str, color: str, style: str = "--") -> None:
    v = _f(value)
    if math.isfinite(v):
        ax.axhline(v, color=color, linestyle=style, linewidth=1.0, label=f"{label} {v:g}")


def _draw_metric(
    ax: Axes, timeline: Timeline, s: _Series, values: np.ndarray, name: str, color: str, title: str
) -> None:
    if np.isfinite(values).any():
        _line(ax, s.x, values, color=color, linewidth=1.3, label=name)
    else:
        _no_data(ax, f"no {name} was recorded")
    _shift_line(ax, timeline, label=False)
    ax.set_ylabel(name)
    ax.set_title(title, loc="left")


def _draw_psi(ax: Axes, timeline: Timeline, s: _Series) -> None:
    _draw_metric(
        ax,
        timeline,
        s,
        s.psi,
        "max feature PSI",
        "#1f77b4",
        "Feature drift: largest PSI of any feature",
    )
    _threshold(ax, timeline.thresholds.get("psi_warning"), "warning", "#ff7f0e")
    _threshold(ax, timeline.thresholds.get("psi_act"), "act", "#d62728")
    _legend(ax, ncol=3)


def _draw_kl(ax: Axes, timeline: Timeline, s: _Series) -> None:
    _draw_metric(
        ax,
        timeline,
        s,
        s.kl,
        "prediction KL",
        "#9467bd",
        "Prediction drift: KL(current || reference)",
    )
    _threshold(ax, timeline.thresholds.get("prediction_kl"), "alarm", "#d62728")
    _legend(ax, ncol=2)


def _draw_ratio(ax: Axes, timeline: Timeline, s: _Series) -> None:
    _draw_metric(
        ax,
        timeline,
        s,
        s.ratio,
        "accuracy ratio",
        "#8c564b",
        f"Accuracy: {timeline.accuracy_metric} / reference (above the line: degraded)",
    )
    _threshold(ax, timeline.thresholds.get("accuracy_ratio"), "degraded above", "#d62728")
    _legend(ax, ncol=2)


def _draw_events(ax: Axes, timeline: Timeline, events: Sequence[TimelineEvent], s: _Series) -> None:
    kinds = list(dict.fromkeys(e.kind for e in events))
    styles = _kind_styles(kinds)
    for row, kind in enumerate(kinds):
        at = _datenum([e.at for e in events if e.kind == kind])
        color, marker = styles[kind]
        ax.plot(
            at,
            [row] * len(at),
            linestyle="none",
            marker=marker,
            color=color,
            markersize=8,
            markeredgecolor="white",
            markeredgewidth=0.5,
        )
    ax.set_yticks(range(len(kinds)), [_mpl(k) for k in kinds])
    ax.set_ylim(-0.7, len(kinds) - 0.3)
    ax.invert_yaxis()
    if len(s.x):  # the same span as the other plots, so dates line up by eye
        times = _datenum([e.at for e in events])
        low, high = min(s.x[0], times.min()), max(s.x[-1], times.max())
        pad = max((high - low) * 0.01, 0.5)
        ax.set_xlim(float(low - pad), float(high + pad))
    _shift_line(ax, timeline)
    ax.grid(axis="y", alpha=0.0)
    ax.set_title("Events", loc="left")


def _date_axis(fig: Figure) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    for ax in fig.axes:
        locator = AutoDateLocator(minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        ax.margins(x=0.01)


# --------------------------------------------------------------------------- output


def _new_figure(
    width: float,
    height: float,
    rows: int = 1,
    left: float = 0.7,
    top: float = 0.35,
    ratios: Sequence[float] | None = None,
) -> tuple[Figure, list[Axes]]:
    """A figure of ``rows`` stacked axes sharing x, with margins given in inches.

    Fixed margins instead of constrained layout: the labels here are short and known, and
    constrained layout would double the drawing time.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    gap = 0.5  # room for each panel's title and the x tick labels of a shared axis
    bottom, right = 0.45, 0.2
    panel = (height - top - bottom - gap * (rows - 1)) / rows
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
        hspace=gap / panel,
    )
    if rows == 1:
        return fig, [fig.add_subplot()]
    axes = fig.subplots(rows, 1, sharex=True, height_ratios=ratios)
    return fig, list(axes)


_SVG_ATTR_DROP = re.compile(r'\s(?:xmlns(?::\w+)?|version)="[^"]*"')


def _svg(fig: Figure, name: str, label: str) -> str:
    """The figure as an inline ``<svg>`` element: no prolog, namespaces or global style."""
    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG

    FigureCanvasSVG(fig)
    buf = io.StringIO()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": f"driftloop-{name}"}):
        fig.savefig(buf, format="svg", metadata=_SVG_METADATA)
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    head_end = text.index(">")
    head = _SVG_ATTR_DROP.sub("", text[:head_end])
    head += f' role="img" aria-label="{label}" class="plot"'
    text = head + text[head_end:]
    text = re.sub(r'<style type="text/css">.*?</style>', "", text, count=1, flags=re.S)
    # ids unique across the page: every SVG defines its own clip paths and markers
    text = text.replace(' id="', f' id="{name}-').replace("url(#", f"url(#{name}-")
    text = text.replace('href="#', f'href="#{name}-')
    return text.strip()


def _plots(timeline: Timeline) -> dict[str, str | None]:
    """The four plots as SVG text (None: nothing to plot)."""
    import matplotlib

    s = _series(timeline)
    events = _events(timeline)
    plots: dict[str, str | None] = {
        "accuracy": None,
        "drift": None,
        "weights": None,
        "events": None,
    }
    with matplotlib.rc_context(_RC):
        if len(s.x):
            fig, (ax,) = _new_figure(11, 4.6)
            _draw_accuracy(ax, timeline, s)
            _date_axis(fig)
            plots["accuracy"] = _svg(fig, "accuracy", "accuracy over time")

            fig, axes = _new_figure(11, 6.4, rows=3)
            _draw_psi(axes[0], timeline, s)
            _draw_kl(axes[1], timeline, s)
            _draw_ratio(axes[2], timeline, s)
            _date_axis(fig)
            plots["drift"] = _svg(fig, "drift", "drift scores against thresholds")

            fig, (ax,) = _new_figure(11, 2.8)
            _draw_weights(ax, timeline, s)
            _date_axis(fig)
            plots["weights"] = _svg(fig, "weights", "traffic weights per version")
        if events:
            kinds = {e.kind for e in events}
            longest = max(len(k) for k in kinds)  # the kinds label the y axis
            fig, (ax,) = _new_figure(
                11, 1.3 + 0.3 * len(kinds), left=min(0.3 + 0.075 * longest, 3.5)
            )
            _draw_events(ax, timeline, events, s)
            _date_axis(fig)
            plots["events"] = _svg(fig, "events", "events on a time axis")
    return plots


def _text(value: Any) -> str:
    """A value for people: short floats, no JSON quoting, lists and dicts one level deep."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    return str(value)


def _compact(value: Any, limit: int = 160) -> str:
    text = _text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _evidence(evidence: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(k), _compact(v)) for k, v in evidence.items()]


def _when(at: datetime) -> str:
    """Minutes are enough; an aware time is shown in UTC and says so."""
    if at.tzinfo is not None:
        return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return at.strftime("%Y-%m-%d %H:%M")


def _met(met: bool | None) -> tuple[str, str, str]:
    """(mark, css class, words) of a key number's verdict."""
    if met is None:
        return "—", "na", "no target"
    return ("✓", "met", "met") if met else ("✗", "missed", "not met")


_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="driftloop {{ version }}">
<title>{{ t.title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; color: #222; margin: 0 auto; max-width: 1150px; padding: 1rem 1.5rem 3rem;
  line-height: 1.45; }
h1 { margin-bottom: .2rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.sub { color: #666; margin-top: 0; }
.scenario { white-space: pre-line; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .92rem; }
th, td { border-bottom: 1px solid #e5e5e5; padding: .3rem .6rem; text-align: left;
  vertical-align: top; }
th { background: #f6f6f6; }
td.num { font-variant-numeric: tabular-nums; }
.met { color: #1a7f37; font-weight: bold; }
.missed { color: #cf222e; font-weight: bold; }
.na { color: #888; }
.sr { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
.wide { overflow-x: auto; }
figure { margin: 1rem 0; }
figcaption { color: #555; font-size: .9rem; }
svg.plot { width: 100%; height: auto; }
svg.plot * { stroke-linejoin: round; stroke-linecap: butt; }
.nodata { color: #777; font-style: italic; }
dl.ev { margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace;
  font-size: .8rem; }
dl.ev dt { display: inline; color: #555; }
dl.ev dd { display: inline; margin: 0 .7rem 0 0; }
tr.kind-rolled_back td, tr.kind-rollback td, tr.kind-aborted td { background: #fff4f4; }
tr.kind-promoted td { background: #f3fbf4; }
footer { margin-top: 3rem; color: #888; font-size: .8rem; }
</style>
</head>
<body>
<h1>{{ t.title }}</h1>
<p class="sub">project {{ t.project }}
{%- if first %} · {{ first }} to {{ last }} ({{ n_days }} days){% endif %}
{%- if t.shift_date %} · shift on {{ t.shift_date }}{% endif %}
 · {{ versions|length }} version{{ "" if versions|length == 1 else "s" }}
 · {{ events|length }} event{{ "" if events|length == 1 else "s" }}</p>
<p class="scenario">{{ t.scenario }}</p>

<h2>Key numbers</h2>
{% if key_numbers %}
<table>
<thead><tr><th>what</th><th>measured</th><th>target</th><th>met</th></tr></thead>
<tbody>
{% for k, mark, cls, words in key_numbers %}
<tr><td>{{ k.name }}</td><td class="num">{{ k.value }}</td>
<td class="num">{{ k.target if k.target is not none else "—" }}</td>
<td class="{{ cls }}" title="{{ words }}">{{ mark }}<span class="sr"> {{ words }}</span></td></tr>
{% endfor %}
</tbody>
</table>
{% else %}<p class="nodata">No key numbers were recorded.</p>{% endif %}

<h2>Accuracy over time</h2>
{% if plots.accuracy %}
<figure>{{ plots.accuracy|safe }}
<figcaption>Daily {{ metric }} of each version on the days it served, as a {{ smoothing }}-day
trailing mean (the faint line is the served mix day by day, unsmoothed). The wide grey
line is what was actually served (the traffic-weighted mix); the dashed line is the first
champion scored offline on the same rows as if it had never been replaced (the control),
and the dotted blue line a model retrained on a fixed schedule (a replay's second
baseline). The green line is the reference {{ metric }} (before the shift in the demo; the first
version's holdout in a replay), the band reaches 10 % above it; the red dotted line
marks the shift. Gaps are days without a value.</figcaption>
</figure>
{% else %}<p class="nodata">No data: the timeline has no days.</p>{% endif %}

<h2>Drift against thresholds</h2>
{% if plots.drift %}
<figure>{{ plots.drift|safe }}
<figcaption>The controller's check at the end of each day over its trailing window:
the largest PSI of any feature with the warning and act levels, the KL divergence of
the predictions from the reference with its alarm level, and the accuracy ratio (recent
{{ metric }} over the reference) with the level above which accuracy counts as degraded.
Gaps are days with not enough data.</figcaption>
</figure>
{% else %}<p class="nodata">No data: the timeline has no days.</p>{% endif %}

<h2>Traffic</h2>
{% if plots.weights %}
<figure>{{ plots.weights|safe }}
<figcaption>Each version's share of the day's served predictions (stacked, 0 to 100 %).
</figcaption>
</figure>
{% else %}<p class="nodata">No data: the timeline has no days.</p>{% endif %}

<h2>Events</h2>
{% if plots.events %}
<figure>{{ plots.events|safe }}
<figcaption>Every decision and happening of the run by kind; the table below holds the
evidence each was taken on.</figcaption>
</figure>
<div class="wide"><table class="events">
<thead><tr><th>time</th><th>kind</th><th>version</th><th>message</th><th>evidence</th></tr>
</thead>
<tbody>
{% for e, when, evidence in events %}
<tr class="kind-{{ e.kind }}"><td>{{ when }}</td><td>{{ e.kind }}</td>
<td>{{ e.version if e.version is not none else "" }}</td><td>{{ e.message }}</td>
<td>{% if evidence %}<dl class="ev">
{%- for k, v in evidence %}<dt>{{ k }}=</dt><dd>{{ v }}</dd>{{ " " }}{% endfor -%}
</dl>{% endif %}</td></tr>
{% endfor %}
</tbody>
</table></div>
{% else %}<p class="nodata">No data: the timeline has no events.</p>{% endif %}

<h2>Versions</h2>
{% if versions %}
<div class="wide"><table class="versions">
<thead><tr><th>version</th>{% for c in version_columns %}<th>{{ c }}</th>{% endfor %}</tr>
</thead>
<tbody>
{% for name, facts in versions %}
<tr><td>{{ name }}</td>{% for c in version_columns %}<td>{{ facts.get(c, "") }}</td>
{%- endfor %}</tr>
{% endfor %}
</tbody>
</table></div>
{% else %}<p class="nodata">No versions were recorded.</p>{% endif %}

<footer>Rendered by driftloop {{ version }} from the run's timeline; self-contained:
no scripts, nothing loaded from elsewhere.</footer>
</body>
</html>
"""


def render_html(timeline: Timeline) -> str:
    """The whole report as one self-contained HTML page."""
    from jinja2 import Environment, StrictUndefined

    env = Environment(
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    days = sorted(timeline.days, key=lambda d: d.day)
    version_names = _version_order(days, timeline.versions)
    versions = [
        (v, {str(k): _compact(x) for k, x in timeline.versions.get(v, {}).items()})
        for v in version_names
    ]
    columns = list(dict.fromkeys(k for _, facts in versions for k in facts))
    return env.from_string(_PAGE).render(
        t=timeline,
        version=__version__,
        first=days[0].day if days else None,
        last=days[-1].day if days else None,
        n_days=len(days),
        smoothing=SMOOTHING_DAYS,
        metric=timeline.accuracy_metric,
        key_numbers=[(k, *_met(k.met)) for k in timeline.key_numbers],
        plots=_plots(timeline),
        events=[(e, _when(e.at), _evidence(e.evidence)) for e in _events(timeline)],
        versions=versions,
        version_columns=columns,
    )


def _summary_figure(timeline: Timeline) -> Figure:
    import matplotlib

    s = _series(timeline)
    with matplotlib.rc_context(_RC):
        if not len(s.x):
            fig, (ax,) = _new_figure(14, 10, top=0.6)
            ax.set_axis_off()
            _no_data(ax, "the timeline has no days")
            fig.suptitle(_mpl(timeline.title), x=0.01, ha="left", fontsize=13)
            return fig
        fig, axes = _new_figure(14, 10, rows=4, top=0.6, ratios=[3.0, 1.3, 1.3, 1.3])
        _draw_accuracy(axes[0], timeline, s)
        _draw_weights(axes[1], timeline, s)
        _draw_psi(axes[2], timeline, s)
        _draw_ratio(axes[3], timeline, s)
        _date_axis(fig)
        fig.suptitle(_mpl(timeline.title), x=0.01, ha="left", fontsize=13)
    return fig


def render_png(timeline: Timeline, path: Path) -> None:
    """One summary figure (accuracy, traffic, feature drift, accuracy ratio), 1400x1000 px."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = _summary_figure(timeline)
    FigureCanvasAgg(fig)
    with matplotlib.rc_context(_RC):
        fig.savefig(path, format="png", dpi=100, metadata={"Software": None})


def _replace_atomically(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then move the temporary file over ``path``."""
    # not mkstemp: its files are private (0600); this one gets the umask's mode like any
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_report(timeline: Timeline, folder: Path, html_name: str = "report.html") -> Path:
    """Write ``report.html`` and ``report.png`` (same stem) into ``folder``; the html path."""
    folder.mkdir(parents=True, exist_ok=True)
    html_path = folder / html_name
    text = render_html(timeline)
    _replace_atomically(html_path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    _replace_atomically(html_path.with_suffix(".png"), lambda tmp: render_png(timeline, tmp))
    return html_path
