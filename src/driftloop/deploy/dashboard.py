"""A Grafana dashboard for one project's model server (pure: a dict out).

Every PromQL expression lives in ``dashboard_panels``: the dashboard is built from it and
tests hand the same expressions to ``promtool`` (see ``dashboard_queries``). The
expressions use no Grafana variables (a fixed ``[5m]`` instead of ``$__rate_interval``),
so they run unchanged against Prometheus; only the data source is a template variable,
``${DS_PROMETHEUS}``.

There is no rollout-state metric: the rollout's state is in ``.driftloop/state.db``
(``driftloop rollout status``). The dashboard shows the traffic share each version really
got (request rates) and the route weight each server reports; on a cluster each pod serves
one version and reports 100 for it, and the configured split is the VirtualService's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from driftloop.config import MonitoringConfig

__all__ = [
    "DASHBOARD_FILENAME",
    "DATASOURCE_VARIABLE",
    "SCHEMA_VERSION",
    "PanelSpec",
    "Query",
    "dashboard_panels",
    "dashboard_queries",
    "grafana_dashboard",
]

DASHBOARD_FILENAME = "grafana-dashboard.json"
DATASOURCE_VARIABLE = "DS_PROMETHEUS"
SCHEMA_VERSION = 39  # Grafana 10.4 / 11
RATE_WINDOW = "5m"
_PANEL_WIDTH = 12
_PANEL_HEIGHT = 8


@dataclass(frozen=True)
class Query:
    """One PromQL expression of a panel and its legend."""

    ref: str
    expr: str
    legend: str


@dataclass(frozen=True)
class PanelSpec:
    """A time-series panel: title, unit, queries, and threshold lines (value, color)."""

    title: str
    description: str
    unit: str
    queries: tuple[Query, ...]
    thresholds: tuple[tuple[float, str], ...] = ()
    min: float | None = None
    max: float | None = None

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "_", self.title.lower()).strip("_")


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def dashboard_panels(model: str, monitoring: MonitoringConfig) -> tuple[PanelSpec, ...]:
    """The dashboard's panels with their PromQL, for ``model`` and the project's thresholds."""
    m = f'model="{_label_value(model)}"'
    return _traffic_panels(m) + _drift_panels(m, monitoring) + _accuracy_panels(m, monitoring)


def _traffic_panels(m: str) -> tuple[PanelSpec, ...]:
    """Traffic share, route weight, request rate, latency and error rate per version."""
    w = RATE_WINDOW
    requests = f"sum by (version) (rate(driftloop_requests_total{{{m}}}[{w}]))"
    errors = f'sum by (version) (rate(driftloop_errors_total{{{m}, kind="model_error"}}[{w}]))'
    errors_or_zero = f"({errors} or 0 * {requests})"

    def latency(q: float) -> Query:
        return Query(
            f"p{round(q * 100)}",
            f"histogram_quantile({q}, sum by (version, le) "
            f"(rate(driftloop_request_latency_seconds_bucket{{{m}}}[{w}])))",
            f"v{{{{version}}}} p{round(q * 100)}",
        )

    return (
        PanelSpec(
            "Traffic share per version",
            "Percent of answered requests per version (the split the mesh or server applied).",
            "percent",
            (
                Query(
                    "A",
                    f"100 * {requests} / ignoring (version) group_left sum({requests})",
                    "v{{version}}",
                ),
            ),
            min=0,
            max=100,
        ),
        PanelSpec(
            "Route weight",
            "Percent of entities the server routes to each alias; no rollout-state metric "
            "exists, so this is the rollout's weight. On a cluster each pinned pod reports "
            "100 for its own version and the VirtualService holds the split.",
            "percent",
            (
                Query(
                    "A",
                    f"max by (version, alias) (driftloop_route_weight{{{m}}})",
                    "v{{version}} {{alias}}",
                ),
            ),
            min=0,
            max=100,
        ),
        PanelSpec(
            "Requests per version",
            "Answered requests per second, by version.",
            "reqps",
            (Query("A", requests, "v{{version}}"),),
            min=0,
        ),
        PanelSpec(
            "Latency per version",
            "Server-side latency quantiles from driftloop_request_latency_seconds.",
            "s",
            (latency(0.5), latency(0.9), latency(0.99)),
            min=0,
        ),
        PanelSpec(
            "Error rate per version",
            "Model errors / (answered + model errors); the rollout rolls back above "
            "rollout.rollback_error_rate.",
            "percentunit",
            (Query("A", f"{errors_or_zero} / ({requests} + {errors_or_zero})", "v{{version}}"),),
            min=0,
        ),
    )


def _drift_panels(m: str, monitoring: MonitoringConfig) -> tuple[PanelSpec, ...]:
    """Feature and prediction drift scores, with the warning and act levels."""
    return (
        PanelSpec(
            "Feature drift (PSI)",
            "PSI of each feature against the version's reference profile; lines at the "
            "warning and act levels.",
            "none",
            (
                Query(
                    "A",
                    f"max by (version, feature) (driftloop_feature_drift_score{{{m}, "
                    f'method="psi"}})',
                    "v{{version}} {{feature}}",
                ),
            ),
            ((monitoring.psi_warning, "orange"), (monitoring.psi_act, "red")),
            min=0,
        ),
        PanelSpec(
            "Prediction drift",
            "PSI and KL of the predictions against the reference; lines at the act levels.",
            "none",
            (
                Query(
                    "A",
                    f"max by (version, method) (driftloop_prediction_drift_score{{{m}}})",
                    "v{{version}} {{method}}",
                ),
            ),
            ((monitoring.prediction_kl, "orange"), (monitoring.psi_act, "red")),
            min=0,
        ),
    )


def _accuracy_panels(m: str, monitoring: MonitoringConfig) -> tuple[PanelSpec, ...]:
    """Accuracy against the holdout, its ratio, label coverage and window rows."""
    return (
        PanelSpec(
            "Accuracy (WAPE) against the holdout",
            "Window WAPE from delayed labels and the version's holdout WAPE.",
            "none",
            (
                Query(
                    "A",
                    f'max by (version) (driftloop_accuracy{{{m}, metric="wape"}})',
                    "v{{version}} window",
                ),
                Query(
                    "B",
                    f'max by (version) (driftloop_accuracy_reference{{{m}, metric="wape"}})',
                    "v{{version}} holdout",
                ),
            ),
            min=0,
        ),
        PanelSpec(
            "Accuracy ratio (window / holdout WAPE)",
            "Above the line is degradation (monitoring.accuracy_ratio).",
            "none",
            (
                Query(
                    "A",
                    f'max by (version) (driftloop_accuracy{{{m}, metric="wape"}}) / '
                    f'max by (version) (driftloop_accuracy_reference{{{m}, metric="wape"}} > 0)',
                    "v{{version}}",
                ),
            ),
            ((monitoring.accuracy_ratio, "red"),),
            min=0,
        ),
        PanelSpec(
            "Label coverage",
            "Share of the window's predictions with a delayed label; accuracy is judged "
            "above the line (monitoring.min_label_coverage).",
            "percentunit",
            (Query("A", f"max by (version) (driftloop_label_coverage{{{m}}})", "v{{version}}"),),
            ((monitoring.min_label_coverage, "orange"),),
            min=0,
            max=1,
        ),
        PanelSpec(
            "Rows in the monitoring window",
            "Drift is judged from monitoring.min_rows rows (the line); below it a window is "
            "'not enough data' and no drift alert fires.",
            "none",
            (Query("A", f"max by (version) (driftloop_window_rows{{{m}}})", "v{{version}}"),),
            ((float(monitoring.min_rows), "orange"),),
            min=0,
        ),
    )


def dashboard_queries(model: str, monitoring: MonitoringConfig) -> dict[str, str]:
    """Every expression of the dashboard keyed ``panel_slug/ref``."""
    return {
        f"{p.slug}/{q.ref}": q.expr for p in dashboard_panels(model, monitoring) for q in p.queries
    }


def _datasource() -> dict[str, str]:
    return {"type": "prometheus", "uid": f"${{{DATASOURCE_VARIABLE}}}"}


def _panel(spec: PanelSpec, panel_id: int) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    steps += [{"color": color, "value": value} for value, color in spec.thresholds]
    defaults: dict[str, Any] = {
        "unit": spec.unit,
        "thresholds": {"mode": "absolute", "steps": steps},
        "custom": {
            "drawStyle": "line",
            "lineWidth": 1,
            "fillOpacity": 0,
            "showPoints": "never",
            "spanNulls": False,
            "thresholdsStyle": {"mode": "line" if spec.thresholds else "off"},
        },
    }
    if spec.min is not None:
        defaults["min"] = spec.min
    if spec.max is not None:
        defaults["max"] = spec.max
    column = (panel_id - 1) % 2
    return {
        "id": panel_id,
        "type": "timeseries",
        "title": spec.title,
        "description": spec.description,
        "datasource": _datasource(),
        "gridPos": {
            "h": _PANEL_HEIGHT,
            "w": _PANEL_WIDTH,
            "x": column * _PANEL_WIDTH,
            "y": ((panel_id - 1) // 2) * _PANEL_HEIGHT,
        },
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "targets": [
            {
                "refId": q.ref,
                "datasource": _datasource(),
                "expr": q.expr,
                "legendFormat": q.legend,
                "range": True,
            }
            for q in spec.queries
        ],
    }


def grafana_dashboard(model: str, monitoring: MonitoringConfig, uid: str) -> dict[str, Any]:
    """An importable dashboard (JSON model) for ``model``'s servers."""
    panels = [_panel(p, i) for i, p in enumerate(dashboard_panels(model, monitoring), start=1)]
    return {
        "uid": uid[:40],
        "title": f"driftloop: {model}",
        "description": "Traffic, latency, errors, drift and accuracy per model version "
        "(generated by driftloop deploy k8s).",
        "tags": ["driftloop", "mlops"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "utc",
        "templating": {
            "list": [
                {
                    "name": DATASOURCE_VARIABLE,
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "hide": 0,
                    "refresh": 1,
                    "current": {},
                    "options": [],
                }
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }
