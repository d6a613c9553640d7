"""What makes a registered artifact safe to load: checksums, where it lives, its format.

Pure functions over local files and URIs; the registry downloads, these decide. Every
refusal is a ModelLoadError naming the version, the artifact and the way out.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import yaml

from driftloop.errors import ModelLoadError

__all__ = [
    "CHECKSUM_TAG",
    "TRUSTED_TYPES_TAG",
    "LoadPolicy",
    "ModelFormat",
    "check_inside_root",
    "digest_dir",
    "load_payload",
    "model_format",
    "recorded_digests",
    "trusted_types",
    "verify_files",
]

logger = logging.getLogger("driftloop.registry")

CHECKSUM_TAG = "driftloop.artifact_sha256"  # JSON {artifact path: sha256}
TRUSTED_TYPES_TAG = "driftloop.skops_trusted_types"  # JSON list, recorded at registration
LEGACY_ONNX_TAG = "driftloop.onnx_sha256"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LoadPolicy:
    """What the registry may load beyond checksummed, pickle-free artifacts (config: registry)."""

    allow_pickle: bool = False
    allow_unverified: bool = False
    skops_trusted_types: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class ModelFormat:
    """How a logged model directory is stored: its payload file and serializer."""

    serializer: str  # "lightgbm-text" | "skops" | "onnx" | "pickle"
    payload: str  # file name inside the model directory
    flavor: str


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def digest_dir(root: Path, prefix: str) -> dict[str, str]:
    """sha256 of every file under ``root``, keyed ``prefix/relative/path``."""
    return {
        f"{prefix}/{p.relative_to(root).as_posix()}": sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def recorded_digests(version: str, tags: Mapping[str, str], policy: LoadPolicy) -> dict[str, str]:
    """The checksums recorded at registration; a version without them needs the policy's leave.

    Versions registered before every artifact was checksummed still carry the ONNX copy's
    checksum when they have one: that copy (what serving loads) stays verified.
    """
    raw = tags.get(CHECKSUM_TAG)
    if raw:
        try:
            found = json.loads(raw)
        except ValueError:
            found = None
        if not isinstance(found, dict) or not all(isinstance(v, str) for v in found.values()):
            raise ModelLoadError(
                f"version {version}: tag {CHECKSUM_TAG} is not a JSON object of checksums; "
                "the registry entry was altered: re-register the model with `driftloop train`"
            )
        return {str(k): v for k, v in found.items()}
    legacy = {"onnx/model.onnx": tags[LEGACY_ONNX_TAG]} if tags.get(LEGACY_ONNX_TAG) else {}
    if not policy.allow_unverified and not legacy:
        raise ModelLoadError(
            f"version {version} has no artifact checksums ({CHECKSUM_TAG}): it was registered "
            "before driftloop recorded them, or outside driftloop; retrain it with `driftloop "
            "train`, or set registry.allow_unverified: true in driftloop.yaml to load it unchecked"
        )
    return legacy


def verify_files(
    version: str, local: Path, prefix: str, expected: Mapping[str, str], policy: LoadPolicy
) -> None:
    """Refuse when a file under ``local`` differs from, or is missing in, the recorded checksums."""
    wanted = {k: v for k, v in expected.items() if k == prefix or k.startswith(prefix + "/")}
    if not wanted:
        if policy.allow_unverified:
            logger.warning(
                "version %s: %s has no recorded checksum; loading it unchecked", version, prefix
            )
            return
        raise ModelLoadError(
            f"version {version}: no checksum was recorded for {prefix}; retrain it with "
            "`driftloop train`, or set registry.allow_unverified: true to load it unchecked"
        )
    actual = digest_dir(local, prefix) if local.is_dir() else {prefix: sha256_file(local)}
    for name in sorted(set(wanted) | set(actual)):
        problem = None
        if name not in actual:
            problem = "is missing"
        elif name not in wanted:
            problem = "was added after registration"
        elif actual[name] != wanted[name]:
            problem = (
                f"has checksum {actual[name][:12]}... but {wanted[name][:12]}... was recorded "
                "at registration"
            )
        if problem:
            message = (
                f"version {version}: artifact {name} {problem}; refusing to load it (the "
                "versions already loaded keep serving); restore the artifact or retrain"
            )
            logger.error("%s", message)
            raise ModelLoadError(message)


def _uri_path(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return str(Path(unquote(parsed.path)).resolve())
    return uri.rstrip("/")


def check_inside_root(version: str, uri: str, root: str) -> None:
    """Refuse an artifact URI outside the configured artifact root."""
    inside, base = _uri_path(uri), _uri_path(root)
    if inside != base and not inside.startswith(base.rstrip("/") + "/"):
        message = (
            f"version {version}: its artifacts live at {uri}, outside the configured artifact "
            f"root {root}; driftloop loads models only from registry.artifact_location"
        )
        logger.error("%s", message)
        raise ModelLoadError(message)


def model_format(version: str, model_dir: Path, policy: LoadPolicy) -> ModelFormat:
    """Read ``MLmodel`` (YAML, never executed) and classify the payload; refuse pickles."""
    try:
        doc: Any = yaml.safe_load((model_dir / "MLmodel").read_text(encoding="utf-8"))
        flavors = doc["flavors"]
    except (OSError, yaml.YAMLError, TypeError, KeyError) as exc:
        raise ModelLoadError(f"version {version}: its MLmodel file is unreadable ({exc})") from exc
    found: ModelFormat | None = None
    if isinstance(flavors, dict):
        lgb, skl, onx = (flavors.get(k) or {} for k in ("lightgbm", "sklearn", "onnx"))
        if lgb.get("model_class") == "lightgbm.basic.Booster" and str(lgb.get("data", "")).endswith(
            ".lgb"
        ):
            found = ModelFormat("lightgbm-text", str(lgb["data"]), "lightgbm")
        elif skl.get("serialization_format") == "skops":
            found = ModelFormat("skops", str(skl.get("pickled_model", "model.skops")), "sklearn")
        elif onx.get("data"):
            found = ModelFormat("onnx", str(onx["data"]), "onnx")
        else:
            flavor = next((k for k in ("sklearn", "lightgbm") if k in flavors), "python_function")
            found = ModelFormat("pickle", "", flavor)
    if found is None or (found.serializer == "pickle" and not policy.allow_pickle):
        raise ModelLoadError(
            f"version {version} is stored in a pickle-based format (flavors "
            f"{sorted(flavors) if isinstance(flavors, dict) else flavors!r}), which can run code "
            "when loaded; driftloop refuses it unless registry.allow_pickle: true is set in "
            "driftloop.yaml (only for models you trust)"
        )
    return found


def trusted_types(version: str, tags: Mapping[str, str], policy: LoadPolicy) -> list[str]:
    """The skops types to trust: recorded at registration, else the config's allow-list."""
    raw = tags.get(TRUSTED_TYPES_TAG)
    if raw:
        try:
            found = json.loads(raw)
        except ValueError:
            found = None
        if isinstance(found, list) and all(isinstance(t, str) for t in found):
            return [*found, *policy.skops_trusted_types]
        raise ModelLoadError(
            f"version {version}: tag {TRUSTED_TYPES_TAG} is not a JSON list of type names"
        )
    return list(policy.skops_trusted_types)


def load_payload(
    version: str, model_dir: Path, fmt: ModelFormat, tags: Mapping[str, str], policy: LoadPolicy
) -> Any:
    """The native model from a verified local model directory, without unpickling."""
    if fmt.serializer == "lightgbm-text":
        import lightgbm

        return lightgbm.Booster(model_file=str(model_dir / fmt.payload))
    if fmt.serializer == "skops":
        import skops.io

        trusted = trusted_types(version, tags, policy)
        path = model_dir / fmt.payload
        untrusted = sorted(set(skops.io.get_untrusted_types(file=path)) - set(trusted))
        if untrusted:
            raise ModelLoadError(
                f"version {version}: its skops file holds types that are not trusted: "
                f"{untrusted}; add them to registry.skops_trusted_types only if you trust them"
            )
        return skops.io.load(path, trusted=trusted)
    # pickle, explicitly allowed by registry.allow_pickle
    import mlflow.pyfunc

    logger.warning(
        "version %s: loading a pickle-based %s model (registry.allow_pickle: true)",
        version,
        fmt.flavor,
    )
    module = {"sklearn": "mlflow.sklearn", "lightgbm": "mlflow.lightgbm"}.get(fmt.flavor)
    if module is None:
        return mlflow.pyfunc.load_model(str(model_dir))
    import importlib

    return importlib.import_module(module).load_model(str(model_dir))
