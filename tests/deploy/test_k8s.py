"""``driftloop deploy k8s``: manifests valid for Kubernetes and Istio, weights, the
dashboard, the admin token kept out, and the output folder rules."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from driftloop.cli.main import app
from driftloop.config import ProjectConfig, dump_config
from driftloop.deploy.dashboard import (
    DASHBOARD_FILENAME,
    dashboard_panels,
    dashboard_queries,
    grafana_dashboard,
)
from driftloop.deploy.k8s import (
    LIVE_PATH,
    PIN_ENV,
    READY_PATH,
    DeployTarget,
    ServedVersions,
    render_manifests,
)
from driftloop.deploy.plan import deploy_k8s
from driftloop.deploy.write import MANIFESTS_DIRNAME, MARKER_FILENAME
from driftloop.errors import UsageError
from driftloop.monitoring.alerts import AlertThresholds, alert_rules

SCHEMAS = Path(__file__).resolve().parent / "schemas" / "istio"
K8S_VERSION = "1.31.0"
CORE_KINDS = (
    "ConfigMap",
    "Service",
    "Deployment",
    "Lease",
    "ServiceAccount",
    "Role",
    "RoleBinding",
)
TOKEN = "s3cret-admin-token-never-rendered"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (CI installs Debian's prometheus)"
)


def _target(
    weight: int = 10, shadow: bool = False, challenger: str | None = "2", **deploy: Any
) -> DeployTarget:
    config = ProjectConfig.model_validate({"project": "retail_shop", "deploy": deploy})
    versions = ServedVersions("1", challenger, weight if challenger else 0, shadow)
    return DeployTarget(config, "retail_shop", versions, dump_config(config))


def _docs(target: DeployTarget) -> list[dict[str, Any]]:
    return [doc for docs in render_manifests(target).values() for doc in docs]


def _one(target: DeployTarget, kind: str) -> dict[str, Any]:
    (doc,) = render_manifests(target)[kind]
    return doc


@pytest.mark.parametrize("challenger", ["2", None])
def test_core_kinds_pass_strict_kubernetes_validation(challenger: str | None) -> None:
    import kubernetes_validate

    docs = [d for d in _docs(_target(challenger=challenger)) if d["kind"] in CORE_KINDS]
    assert {d["kind"] for d in docs} == set(CORE_KINDS)
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_loop_lease_lasts_loop_lease_s_and_validates_strictly() -> None:
    import kubernetes_validate

    config = ProjectConfig.model_validate({"project": "retail_shop", "loop": {"lease_s": 12.5}})
    target = DeployTarget(config, "retail_shop", ServedVersions("1"), dump_config(config))
    lease = _one(target, "Lease")
    kubernetes_validate.validate(lease, K8S_VERSION, strict=True)
    assert lease["spec"] == {"leaseDurationSeconds": 13}
    assert lease["metadata"]["name"] == "retail-shop-loop"


def test_the_controller_may_get_and_update_its_own_lease_and_create_leases_only() -> None:
    target = _target(challenger=None, namespace="ml")
    account, role, binding = (_one(target, k) for k in ("ServiceAccount", "Role", "RoleBinding"))
    assert {d["metadata"]["name"] for d in (account, role, binding)} == {"retail-shop-loop"}
    assert {d["metadata"]["namespace"] for d in (account, role, binding)} == {"ml"}
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["retail-shop-loop"],
            "verbs": ["get", "update"],
        },
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]
    assert binding["roleRef"]["name"] == "retail-shop-loop"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "retail-shop-loop", "namespace": "ml"}
    ]


def test_strict_validation_catches_a_misspelled_field() -> None:
    import kubernetes_validate

    doc = _one(_target(challenger=None), "Deployment")
    doc["spec"]["replica"] = doc["spec"].pop("replicas")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def _istio_validator(schema: str) -> Any:
    import jsonschema

    return jsonschema.Draft7Validator(
        json.loads((SCHEMAS / f"{schema}_v1.json").read_text(encoding="utf-8"))
    )


@pytest.mark.parametrize("shadow", [False, True])
def test_istio_kinds_match_their_schemas(shadow: bool) -> None:
    target = _target(shadow=shadow, hosts=["forecast.example.com"], gateways=["istio/public"])
    for kind in ("VirtualService", "DestinationRule"):
        doc = _one(target, kind)
        assert doc["apiVersion"] == "networking.istio.io/v1"
        errors = [e.message for e in _istio_validator(kind.lower()).iter_errors(doc)]
        assert errors == []


def test_istio_schema_catches_a_misspelled_field() -> None:
    bad = _one(_target(), "VirtualService")
    bad["spec"]["http"][0]["route"][0]["wieght"] = 5
    assert list(_istio_validator("virtualservice").iter_errors(bad))


@pytest.mark.parametrize("weight", [0, 10, 50, 100])
def test_canary_weights_sum_to_100(weight: int) -> None:
    route = _one(_target(weight), "VirtualService")["spec"]["http"][0]["route"]
    by_subset = {r["destination"]["subset"]: r["weight"] for r in route}
    assert by_subset == {"v1": 100 - weight, "v2": weight}
    assert sum(by_subset.values()) == 100


def test_champion_alone_gets_all_traffic_and_one_subset() -> None:
    target = _target(challenger=None)
    route = _one(target, "VirtualService")["spec"]["http"][0]["route"]
    assert [(r["destination"]["subset"], r["weight"]) for r in route] == [("v1", 100)]
    assert [s["name"] for s in _one(target, "DestinationRule")["spec"]["subsets"]] == ["v1"]
    assert [d["metadata"]["name"] for d in render_manifests(target)["Deployment"]] == [
        "retail-shop-v1"
    ]


def test_shadow_mirrors_to_the_challenger_only_when_asked() -> None:
    http = _one(_target(shadow=True), "VirtualService")["spec"]["http"][0]
    assert http["mirror"]["subset"] == "v2"
    assert http["mirrorPercentage"] == {"value": 100.0}
    assert "mirror" not in _one(_target(shadow=False), "VirtualService")["spec"]["http"][0]


def test_a_weight_without_challenger_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a challenger"):
        ServedVersions("1", None, 10)
    with pytest.raises(ValueError, match="whole percent"):
        ServedVersions("1", "2", 101)


def test_each_deployment_is_pinned_and_found_by_its_subset_and_services() -> None:
    target = _target()
    manifests = render_manifests(target)
    subsets = {s["name"]: s["labels"] for s in _one(target, "DestinationRule")["spec"]["subsets"]}
    services = {s["metadata"]["name"]: s for s in manifests["Service"]}
    for dep in manifests["Deployment"]:
        pod = dep["spec"]["template"]
        labels = pod["metadata"]["labels"]
        (container,) = pod["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        version = labels["version"].removeprefix("v")
        assert env[PIN_ENV] == version
        assert container["command"][:2] == ["driftloop", "serve"]
        assert container["readinessProbe"]["httpGet"]["path"] == READY_PATH
        assert container["livenessProbe"]["httpGet"]["path"] == LIVE_PATH
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert subsets[labels["version"]].items() <= labels.items()
        assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
        own = services[dep["metadata"]["name"]]
        assert own["spec"]["selector"].items() <= labels.items()
        assert services["retail-shop"]["spec"]["selector"].items() <= labels.items()


def test_probe_paths_are_routes_of_the_server() -> None:
    import inspect

    import driftloop.serving.app

    source = inspect.getsource(driftloop.serving.app)
    assert f'"{READY_PATH}"' in source and f'"{LIVE_PATH}"' in source


def test_service_monitor_scrapes_each_version_once_under_the_alert_job() -> None:
    target = _target(job="shopjob", monitoring_labels={"release": "kps"})
    manifests = render_manifests(target)
    monitor = _one(target, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kps"
    wanted = monitor["spec"]["selector"]["matchLabels"]
    picked = [
        s["metadata"]["name"]
        for s in manifests["Service"]
        if wanted.items() <= s["metadata"]["labels"].items()
    ]
    assert picked == ["retail-shop-v1", "retail-shop-v2"]  # not the shared Service too
    for name in picked:
        labels = next(s for s in manifests["Service"] if s["metadata"]["name"] == name)
        assert labels["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "shopjob"
    exprs = [r["expr"] for r in _one(target, "PrometheusRule")["spec"]["groups"][0]["rules"]]
    assert 'up{job="shopjob"} == 0\n' in exprs


def test_prometheus_rule_carries_the_generated_alert_rules() -> None:
    target = _target()
    rule = _one(target, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    expected = alert_rules(AlertThresholds.from_monitoring(target.config.monitoring))
    assert rule["spec"] == expected


@needs_promtool
def test_prometheus_rule_passes_promtool(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(_one(_target(), "PrometheusRule")["spec"]), encoding="utf-8")
    done = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_admin_token_is_a_secret_reference_only() -> None:
    deployment = _one(_target(challenger=None), "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (token,) = [e for e in container["env"] if e["name"] == "DRIFTLOOP_ADMIN_TOKEN"]
    assert "value" not in token
    assert token["valueFrom"]["secretKeyRef"] == {
        "name": "driftloop-admin-token",
        "key": "token",
        "optional": False,
    }


# -- dashboard ------------------------------------------------------------------------------
PANEL_METRICS = {
    "Traffic share per version": "driftloop_requests_total",
    "Route weight": "driftloop_route_weight",
    "Requests per version": "driftloop_requests_total",
    "Latency per version": "driftloop_request_latency_seconds_bucket",
    "Error rate per version": "driftloop_errors_total",
    "Feature drift (PSI)": "driftloop_feature_drift_score",
    "Prediction drift": "driftloop_prediction_drift_score",
    "Accuracy (WAPE) against the holdout": "driftloop_accuracy_reference",
    "Accuracy ratio (window / holdout WAPE)": "driftloop_accuracy",
    "Label coverage": "driftloop_label_coverage",
    "Rows in the monitoring window": "driftloop_window_rows",
}


def test_dashboard_has_the_panels_and_a_datasource_variable() -> None:
    config = ProjectConfig(project="shop")
    board = json.loads(json.dumps(grafana_dashboard("shop", config.monitoring, "driftloop-shop")))
    assert board["schemaVersion"] >= 36
    (variable,) = board["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "DS_PROMETHEUS",
        "datasource",
        "prometheus",
    )
    panels = {p["title"]: p for p in board["panels"]}
    assert set(panels) == set(PANEL_METRICS)
    assert len({p["id"] for p in board["panels"]}) == len(panels)
    for title, metric in PANEL_METRICS.items():
        panel = panels[title]
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}"
        assert any(metric in t["expr"] for t in panel["targets"]), title
        assert all('model="shop"' in t["expr"] for t in panel["targets"]), title
    assert "histogram_quantile(0.99" in json.dumps(panels["Latency per version"])
    drift_lines = panels["Feature drift (PSI)"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in drift_lines] == [None, 0.15, 0.25]


@needs_promtool
def test_every_dashboard_expression_parses_with_promtool(tmp_path: Path) -> None:
    queries = dashboard_queries('odd"name', ProjectConfig(project="shop").monitoring)
    assert len(queries) == sum(
        len(p.queries) for p in dashboard_panels("x", ProjectConfig(project="shop").monitoring)
    )
    rules = [
        {"record": f"driftloop:dashboard:{i}", "expr": expr}
        for i, expr in enumerate(queries.values())
    ]
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


# -- the command ----------------------------------------------------------------------------
def _run(args: list[str], env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, args, env=env)


def test_cli_writes_every_kind_and_never_the_admin_token(
    trained_project: Any, tmp_path: Path
) -> None:
    out = tmp_path / "k8s"
    env = {"DRIFTLOOP_ADMIN_TOKEN": TOKEN, "DRIFTLOOP__SERVING__ADMIN_TOKEN": TOKEN + "-cfg"}
    result = _run(
        ["deploy", "k8s", "--out", str(out), "--project", str(trained_project.root), "--json"], env
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["champion"] == "1" and summary["weights"] == {"1": 100}
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert (out / MARKER_FILENAME) in files and (out / DASHBOARD_FILENAME) in files
    kinds = set()
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert TOKEN not in text, path
        if path.suffix == ".yaml":
            kinds |= {d["kind"] for d in yaml.safe_load_all(text)}
    assert TOKEN not in result.output
    assert kinds == {
        *CORE_KINDS,
        "VirtualService",
        "DestinationRule",
        "ServiceMonitor",
        "PrometheusRule",
        "Kustomization",
    }
    kustomization = yaml.safe_load((out / MANIFESTS_DIRNAME / "kustomization.yaml").read_text())
    assert all((out / MANIFESTS_DIRNAME / f).is_file() for f in kustomization["resources"])
    json.loads((out / DASHBOARD_FILENAME).read_text(encoding="utf-8"))

    again = _run(["deploy", "k8s", "--out", str(out), "--project", str(trained_project.root)])
    assert again.exit_code == 0, again.output  # its own earlier output is replaced
    assert sorted(p for p in out.rglob("*") if p.is_file()) == files
    assert [p.name for p in tmp_path.iterdir()] == ["k8s"]  # no staging folder left behind


def test_cli_refuses_a_foreign_folder_and_writes_nothing(
    trained_project: Any, tmp_path: Path
) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = _run(["deploy", "k8s", "--out", str(out), "--project", str(trained_project.root)])
    assert result.exit_code == 2
    assert "not made by `driftloop deploy k8s`" in result.output
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]


def test_cli_refuses_a_challenger_weight_without_challenger(
    trained_project: Any, tmp_path: Path
) -> None:
    out = tmp_path / "k8s"
    result = _run(
        [
            "deploy",
            "k8s",
            "--out",
            str(out),
            "--project",
            str(trained_project.root),
            "--weight",
            "10",
        ]
    )
    assert result.exit_code == 2
    assert "need a challenger" in result.output
    assert not out.exists()


class _NoChampion:
    model_name = "shop"

    def alias(self, alias: str) -> None:
        return None


def test_no_champion_is_a_usage_error(trained_project: Any, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no champion to deploy: train one"):
        deploy_k8s(trained_project, _NoChampion(), tmp_path / "k8s")  # type: ignore[arg-type]
    assert not (tmp_path / "k8s").exists()
