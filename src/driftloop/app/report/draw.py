"""The plots of the report, one function per panel (matplotlib, no pyplot)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from driftloop.app.report.series import SMOOTHING_DAYS, Series, datenum, num, smooth
from driftloop.loop.timeline import Timeline, TimelineEvent

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

RC: dict[RcKeyType, Any] = {
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
LOOP_COLOR = "#111111"  # what the loop served: the line the reader follows
NOT_JUDGED_COLOR = "#bbbbbb"
_OTHER_KIND_COLORS = ("#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79", "#637939")

__all__ = [
    "RC",
    "date_axis",
    "draw_accuracy",
    "draw_events",
    "draw_kl",
    "draw_psi",
    "draw_ratio",
    "draw_weights",
    "mpl_text",
    "no_data",
    "ratio_reference",
]


def _label(version: str) -> str:
    return f"v{version}" if version.isdigit() else version


def mpl_text(text: str) -> str:
    """A timeline string as literal matplotlib text: a ``$`` must not start mathtext."""
    return text.replace("$", r"\$")


def _colors(versions: Sequence[str]) -> dict[str, str]:
    return {v: _VERSION_COLORS[i % len(_VERSION_COLORS)] for i, v in enumerate(versions)}


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


def no_data(ax: Axes, what: str) -> None:
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
            float(datenum([timeline.shift_date])[0]),
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


def draw_accuracy(ax: Axes, timeline: Timeline, s: Series) -> None:
    colors = _colors(s.versions)
    anything = False
    ref = num(timeline.reference_wape)
    if math.isfinite(ref):
        ax.axhspan(
            ref, ref * 1.10, color="#2ca02c", alpha=0.12, linewidth=0, label="reference +10 %"
        )
        which = "pre-shift" if timeline.shift_date else "v1 holdout"
        ax.axhline(ref, color="#2ca02c", linewidth=1.0, label=f"reference ({which}) {ref:.3f}")
    for v in s.versions:
        if np.isfinite(s.wape[v]).any():
            anything = True
            _line(
                ax,
                s.x,
                smooth(s.wape[v]),
                color=colors[v],
                linewidth=1.0,
                alpha=0.6,
                label=mpl_text(_label(v)),
            )
    baselines = (
        (s.frozen, "#555555", "--", "frozen first champion (control)"),
        (s.scheduled, "#1f77b4", ":", "retrained on a fixed schedule"),
    )
    for values, color, style, label in baselines:
        if np.isfinite(values).any():
            anything = True
            _line(ax, s.x, smooth(values), color=color, linewidth=1.3, linestyle=style, label=label)
    if np.isfinite(s.served).any():
        anything = True
        ax.plot(s.x, s.served, color=LOOP_COLOR, linewidth=0.6, alpha=0.3, label="served, daily")
        # the loop's result: drawn last, dark and wide, above every other line
        _line(
            ax,
            s.x,
            smooth(s.served),
            color=LOOP_COLOR,
            linewidth=3.0,
            zorder=5,
            label="served by the loop (traffic mix)",
        )
    _shift_line(ax, timeline)
    if not anything:
        no_data(ax, f"no {timeline.accuracy_metric} was recorded")
    ax.set_ylabel(f"{timeline.accuracy_metric} (lower is better)")
    title = f"Accuracy over time ({SMOOTHING_DAYS}-day trailing mean)"
    served = s.served[np.isfinite(s.served)]
    if math.isfinite(ref) and served.size:
        # A broken version's WAPE can be many times the rest: keep the served range readable.
        top = max(float(np.max(smooth(s.served)[np.isfinite(smooth(s.served))])), ref) * 1.25
        if any(np.nanmax(s.wape[v], initial=0.0) > top for v in s.versions):
            ax.set_ylim(0, top)
            title += "; lines above the top are cut"
    ax.set_title(title, loc="left")
    _legend(ax, ncol=3)


def draw_weights(ax: Axes, timeline: Timeline, s: Series) -> None:
    colors = _colors(s.versions)
    shown = [v for v in s.versions if s.weights[v].any()]
    if shown:
        ax.stackplot(
            s.x,
            *[s.weights[v] * 100.0 for v in shown],
            labels=[mpl_text(_label(v)) for v in shown],
            colors=[colors[v] for v in shown],
            alpha=0.85,
            step="post",
        )
    else:
        no_data(ax, "no traffic weights were recorded")
    _shift_line(ax, timeline, label=False)
    ax.set_ylim(0, 100)
    ax.set_ylabel("traffic %")
    ax.set_title("Traffic weight per version", loc="left")
    if shown:
        _legend(ax, ncol=min(len(shown), 6))


def _threshold(ax: Axes, value: float | None, label: str, color: str, style: str = "--") -> None:
    v = num(value)
    if math.isfinite(v):
        ax.axhline(v, color=color, linestyle=style, linewidth=1.0, label=f"{label} {v:g}")


def _not_judged(ax: Axes, s: Series, judged: np.ndarray) -> None:
    """Grey bands over the days the monitor did not judge (too few rows or labels)."""
    labelled = False
    day = 0
    while day < len(judged):
        if judged[day]:
            day += 1
            continue
        end = day
        while end + 1 < len(judged) and not judged[end + 1]:
            end += 1
        ax.axvspan(
            float(s.x[day] - 0.5),
            float(s.x[end] + 0.5),
            color=NOT_JUDGED_COLOR,
            alpha=0.3,
            linewidth=0,
            label=None if labelled else "not judged",
        )
        labelled = True
        day = end + 1


def _draw_metric(
    ax: Axes,
    timeline: Timeline,
    s: Series,
    values: np.ndarray,
    judged: np.ndarray,
    name: str,
    color: str,
    title: str,
) -> None:
    if np.isfinite(values).any():
        _line(ax, s.x, values, color=color, linewidth=1.3, label=name)
    else:
        no_data(ax, f"no {name} was judged")
    _not_judged(ax, s, judged)
    _shift_line(ax, timeline, label=False)
    ax.set_ylabel(name)
    ax.set_title(title, loc="left")


def draw_psi(ax: Axes, timeline: Timeline, s: Series) -> None:
    _draw_metric(
        ax,
        timeline,
        s,
        s.psi,
        s.drift_judged,
        "max feature PSI",
        "#1f77b4",
        "Feature drift: largest PSI of any feature",
    )
    _threshold(ax, timeline.thresholds.get("psi_warning"), "warning", "#ff7f0e")
    _threshold(ax, timeline.thresholds.get("psi_act"), "act", "#d62728")
    _legend(ax, ncol=4)


def draw_kl(ax: Axes, timeline: Timeline, s: Series) -> None:
    _draw_metric(
        ax,
        timeline,
        s,
        s.kl,
        s.drift_judged,
        "prediction KL",
        "#9467bd",
        "Prediction drift: KL(current || reference)",
    )
    _threshold(ax, timeline.thresholds.get("prediction_kl"), "alarm", "#d62728")
    _legend(ax, ncol=3)


def ratio_reference(timeline: Timeline, s: Series) -> str:
    """Which reference the ratio panel divides by, in words."""
    metric = timeline.accuracy_metric
    if s.fixed_reference is None:
        return f"each champion's own holdout {metric} (the first champion's is not recorded)"
    version, value = s.fixed_reference
    return f"the first champion's (v{version}) holdout {metric} {value:.3f}"


def draw_ratio(ax: Axes, timeline: Timeline, s: Series) -> None:
    fixed = s.fixed_reference is not None
    values = s.fixed_ratio if fixed else s.ratio
    metric = timeline.accuracy_metric
    ref = f"v{s.fixed_reference[0]} holdout" if s.fixed_reference else "own holdout"
    _draw_metric(
        ax,
        timeline,
        s,
        values,
        s.accuracy_judged,
        f"{metric} / {ref}",
        "#8c564b",
        f"Accuracy: the window's {metric} over {ratio_reference(timeline, s)} "
        "(above the line: degraded)",
    )
    if fixed and not np.allclose(s.ratio, s.fixed_ratio, equal_nan=True):
        _line(
            ax,
            s.x,
            s.ratio,
            color="#8c564b",
            linewidth=0.9,
            linestyle=":",
            alpha=0.8,
            label="as the loop judged it (each champion / its own holdout)",
        )
    _threshold(ax, timeline.thresholds.get("accuracy_ratio"), "degraded above", "#d62728")
    _legend(ax, ncol=4)


def draw_events(ax: Axes, timeline: Timeline, events: Sequence[TimelineEvent], s: Series) -> None:
    kinds = list(dict.fromkeys(e.kind for e in events))
    styles = _kind_styles(kinds)
    for row, kind in enumerate(kinds):
        at = datenum([e.at for e in events if e.kind == kind])
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
    ax.set_yticks(range(len(kinds)), [mpl_text(k) for k in kinds])
    ax.set_ylim(-0.7, len(kinds) - 0.3)
    ax.invert_yaxis()
    if len(s.x):  # the same span as the other plots, so dates line up by eye
        times = datenum([e.at for e in events])
        low, high = min(s.x[0], times.min()), max(s.x[-1], times.max())
        pad = max((high - low) * 0.01, 0.5)
        ax.set_xlim(float(low - pad), float(high + pad))
    _shift_line(ax, timeline)
    ax.grid(axis="y", alpha=0.0)
    ax.set_title("Events", loc="left")


def date_axis(fig: Figure) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    for ax in fig.axes:
        locator = AutoDateLocator(minticks=4, maxticks=10)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
        ax.margins(x=0.01)
