"""Drift gauges inside the server, and a real Prometheus scraping them."""

from __future__ import annotations

import contextlib
import math
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from driftloop.monitoring.alerts import AlertThresholds, render_rules
from driftloop.monitoring.monitor import monitor_project
from driftloop.registry import open_registry


def gauge(text: str, name: str, **labels: str) -> float | None:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{"):
            inner = line[len(name) + 1 : line.index("}")]
            have = ",".join(sorted(p for p in inner.split(",") if not p.startswith("model=")))
            if have == want:
                return float(line.rsplit(" ", 1)[1])
    return None


def test_live_gauges_equal_the_offline_monitor_on_the_same_window(live_server: Any) -> None:
    text = httpx.get(f"{live_server.url}/metrics").text
    project = live_server.ctx.project
    (latest,) = monitor_project(project, open_registry(project), keys=KEYS).windows[-1].versions
    assert gauge(text, "driftloop_window_rows", version="1") == latest.rows
    for f in latest.features:
        live = gauge(
            text, "driftloop_feature_drift_score", version="1", feature=f.name, method="psi"
        )
        assert live is not None and math.isclose(live, f.psi, rel_tol=1e-9), f.name
    kl = gauge(text, "driftloop_prediction_drift_score", version="1", method="kl")
    assert kl is not None and math.isclose(kl, latest.prediction.kl, rel_tol=1e-9)
    assert gauge(text, "driftloop_label_coverage", version="1") == 1.0
    wape = gauge(text, "driftloop_accuracy", version="1", metric="wape")
    assert latest.accuracy is not None and wape is not None
    assert math.isclose(wape, latest.accuracy.wape, rel_tol=1e-9)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


KEYS = ("store_id", "product_id")  # the retail scenario's entity keys
NO_PROMETHEUS = "the prometheus binary is absent (Debian package 'prometheus')"


@pytest.mark.skipif(shutil.which("prometheus") is None, reason=NO_PROMETHEUS)
def test_a_real_prometheus_scrapes_the_drift_gauge_and_loads_the_rules(
    live_server: Any, tmp_path: Path
) -> None:
    target = live_server.url.removeprefix("http://")
    (tmp_path / "rules.yml").write_text(render_rules(AlertThresholds(min_window_rows=200)))
    (tmp_path / "prometheus.yml").write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(tmp_path / "rules.yml")],
                "scrape_configs": [
                    {"job_name": "driftloop", "static_configs": [{"targets": [target]}]}
                ],
            }
        )
    )
    port = free_port()
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api/v1"
    query = 'driftloop_feature_drift_score{feature="units_mean_7d",method="psi"}'
    try:
        deadline = time.monotonic() + 90
        result: list[Any] = []
        while time.monotonic() < deadline and not result:
            with contextlib.suppress(httpx.TransportError, KeyError, ValueError):
                result = httpx.get(f"{api}/query", params={"query": query}).json()["data"]["result"]
            if not result:
                time.sleep(0.5)  # polling Prometheus, a process we started
        assert result, "Prometheus never returned the drift gauge"
        assert float(result[0]["value"][1]) >= 0.25
        assert result[0]["metric"]["job"] == "driftloop"
        alerts: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            alerts = httpx.get(f"{api}/alerts").json()["data"]["alerts"]
            if any(a["labels"]["alertname"] == "DriftloopFeatureDriftAct" for a in alerts):
                break
            time.sleep(0.5)
        act = [a for a in alerts if a["labels"]["alertname"] == "DriftloopFeatureDriftAct"]
        assert act and act[0]["state"] in ("pending", "firing")
        assert {a["labels"]["kind"] for a in act} == {"data_drift"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
