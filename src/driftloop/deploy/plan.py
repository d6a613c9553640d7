"""What to deploy: the served versions from the registry, the weight, the warnings."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from driftloop.config import dump_config
from driftloop.deploy.dashboard import DASHBOARD_FILENAME, grafana_dashboard
from driftloop.deploy.k8s import DeployTarget, ServedVersions, render_manifests
from driftloop.deploy.write import write_output
from driftloop.errors import UsageError
from driftloop.project import Project
from driftloop.registry.base import CHALLENGER, CHAMPION, ModelRegistry

__all__ = ["DeployResult", "cluster_warnings", "deploy_k8s", "served_versions"]


@dataclass(frozen=True)
class DeployResult:
    """What ``driftloop deploy k8s`` wrote."""

    out: Path
    namespace: str
    image: str
    champion: str
    challenger: str | None
    weights: dict[str, int]
    shadow: bool
    files: list[Path]
    objects: dict[str, int]
    warnings: list[str]


def _stored_routes(project: Project, model: str) -> tuple[str | None, float, bool]:
    """The server's last route table (challenger, weight, shadow), read only, if saved."""
    path = project.state_dir / "state.db"
    if not path.is_file():
        return None, 0.0, False
    try:
        with closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)) as db:
            row = db.execute(
                "SELECT challenger, challenger_weight, shadow FROM routing WHERE model = ?",
                (model,),
            ).fetchone()
    except sqlite3.OperationalError:  # no routing table: no server ever ran here
        return None, 0.0, False
    if row is None:
        return None, 0.0, False
    return row[0], float(row[1]), bool(row[2])


def served_versions(
    project: Project, registry: ModelRegistry, weight: int | None, shadow: bool | None
) -> ServedVersions:
    """Champion and challenger from the registry aliases; weight and shadow as given, else
    the server's last saved route table for that challenger, else 0 and off."""
    champion = registry.alias(CHAMPION)
    if champion is None:
        raise UsageError(
            f"model {registry.model_name!r} has no champion to deploy: train one with "
            "`driftloop train` (or promote a version with `driftloop models promote V`)"
        )
    found = registry.alias(CHALLENGER)
    challenger = found.version if found and found.version != champion.version else None
    if challenger is None and (weight or shadow):
        raise UsageError(
            f"--weight {weight or 0} / --shadow need a challenger, and model "
            f"{registry.model_name!r} has none: register one with "
            "`driftloop train --on-pass challenger`"
        )
    stored_challenger, stored_weight, stored_shadow = _stored_routes(project, registry.model_name)
    if challenger is not None and stored_challenger == challenger:
        weight = round(stored_weight) if weight is None else weight
        shadow = stored_shadow if shadow is None else shadow
    try:
        return ServedVersions(champion.version, challenger, weight or 0, bool(shadow))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def cluster_warnings(project: Project) -> list[str]:
    """Config that works on one machine but not in pods (each pod has an empty .driftloop)."""
    cfg = project.config
    warnings = []
    if cfg.registry.tracking_uri is None or cfg.registry.tracking_uri.startswith("sqlite"):
        warnings.append(
            "registry.tracking_uri is the local SQLite file: pods cannot reach it; point it "
            "at an MLflow tracking server (and registry.artifact_location at object storage)"
        )
    if cfg.features.online_store.type == "sqlite":
        warnings.append(
            "features.online_store is SQLite in the project folder: /v1/predict needs a "
            "shared online store on a cluster (the V2 endpoints work without one)"
        )
    if cfg.rollout.prometheus_url is None:
        warnings.append(
            "rollout.prometheus_url is not set: the rollout reads one server's /metrics; "
            "with several pods per version point it at Prometheus"
        )
    return warnings


def deploy_k8s(
    project: Project,
    registry: ModelRegistry,
    out: Path,
    weight: int | None = None,
    shadow: bool | None = None,
) -> DeployResult:
    """Render the manifests and the dashboard for ``project`` and write them to ``out``."""
    if weight is not None and not (isinstance(weight, int) and 0 <= weight <= 100):
        raise UsageError(f"--weight must be a whole percent 0..100, got {weight!r}")
    versions = served_versions(project, registry, weight, shadow)
    target = DeployTarget(
        project.config, registry.model_name, versions, dump_config(project.config)
    )
    manifests = render_manifests(target)
    dashboard = grafana_dashboard(
        registry.model_name, project.config.monitoring, f"driftloop-{target.name}"
    )
    files = write_output(out, manifests, dashboard, DASHBOARD_FILENAME)
    return DeployResult(
        out=out.expanduser().resolve(),
        namespace=target.namespace,
        image=target.image,
        champion=versions.champion,
        challenger=versions.challenger,
        weights=versions.weights(),
        shadow=versions.shadow,
        files=files,
        objects={kind: len(docs) for kind, docs in manifests.items()},
        warnings=cluster_warnings(project),
    )
