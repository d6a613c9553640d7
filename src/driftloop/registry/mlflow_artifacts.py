"""What a version holds in MLflow and how it is logged: artifact names, the model (native,
skops or ONNX) with its signature, the ONNX copy, and the description of its gate."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from driftloop.registry.base import RegistrationRequest
from driftloop.registry.integrity import CHECKSUM_TAG, TRUSTED_TYPES_TAG, digest_dir

__all__ = [
    "GATE_ARTIFACT",
    "MODEL_ARTIFACT",
    "ONNX_ARTIFACT",
    "ONNX_KIND",
    "PROFILE_ARTIFACT",
    "log_model",
    "log_onnx",
    "model_digests",
    "model_signature",
    "version_description",
    "version_tags",
]

PROFILE_ARTIFACT = "reference_profile.json"
GATE_ARTIFACT = "gate.json"
ONNX_ARTIFACT = "onnx/model.onnx"
MODEL_ARTIFACT = "model"
ONNX_KIND = "onnx"  # a version whose only model is its ONNX graph


def model_signature(feature_names: tuple[str, ...]) -> Any:
    """The MLflow signature of a driftloop model: its features as named float64 columns
    (missing values allowed) in, one float64 (prediction or probability) out."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    inputs = Schema([ColSpec("double", name, required=False) for name in feature_names])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double")]))


def version_description(request: RegistrationRequest) -> str:
    """A version's description in MLflow: its gate verdict and every check (Markdown)."""
    gate = request.gate
    verdict = "passed" if request.gate_passed else "rejected"
    lines = [f"**Gate {verdict}** ({request.task}): {gate.get('summary', verdict)}"]
    checks = gate.get("checks") or []
    if checks:
        lines.append("")
        for check in checks:
            mark = "ok" if check.get("passed") else "FAILED"
            lines.append(f"- {mark} {check.get('name', '?')}: {check.get('detail', '')}")
    lines += ["", f"Registered by driftloop ({request.run_name})."]
    return "\n".join(lines)[:5000]


def log_model(request: RegistrationRequest) -> tuple[Any, dict[str, str]]:
    """The logged model's info, and the version tags that say how to load it safely."""
    import mlflow

    signature = model_signature(request.feature_names)
    if request.model_kind == ONNX_KIND:
        import mlflow.onnx
        import onnx

        # ONNX-only versions (quantized or fused graphs) have no native model to save.
        return mlflow.onnx.log_model(
            onnx.load_from_string(request.model),
            name=MODEL_ARTIFACT,
            pip_requirements=request.pip_requirements,
            save_as_external_data=False,
            onnx_execution_providers=["CPUExecutionProvider"],
            signature=signature,
        ), {}
    if request.model_kind == "lightgbm":
        return mlflow.lightgbm.log_model(
            request.model,
            name=MODEL_ARTIFACT,
            pip_requirements=request.pip_requirements,
            signature=signature,
        ), {}
    import skops.io

    # The estimator was built here from configured classes: trust exactly its types.
    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(request.model))
    info = mlflow.sklearn.log_model(
        request.model,
        name=MODEL_ARTIFACT,
        serialization_format="skops",
        skops_trusted_types=trusted,
        pip_requirements=request.pip_requirements,
        signature=signature,
    )
    # Loading trusts this list from the registry, never the one inside the artifact.
    return info, {TRUSTED_TYPES_TAG: json.dumps(sorted(trusted))}


def log_onnx(model: bytes | None) -> dict[str, str]:
    """Log the ONNX copy beside the model (in the active run); its sha256 as a tag."""
    import mlflow

    if model is None:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(ONNX_ARTIFACT).name
        path.write_bytes(model)
        mlflow.log_artifact(str(path), artifact_path=str(Path(ONNX_ARTIFACT).parent))
    return {"driftloop.onnx_sha256": hashlib.sha256(model).hexdigest()}


def model_digests(client: Any, info: Any) -> dict[str, str]:
    """sha256 of every file of the model as logged (read back from the artifact store)."""
    import mlflow

    location = client.get_logged_model(info.model_id).artifact_location
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=tmp))
        return digest_dir(local, MODEL_ARTIFACT)


def version_tags(
    request: RegistrationRequest,
    model_digests: dict[str, str],
    profile_text: str,
    logged: dict[str, str],
) -> dict[str, str]:
    """The new version's tags: the request's, those ``logged`` with its model and ONNX copy,
    the checksums of its artifacts (the model's files, the profile, the ONNX copy), its
    gate's verdict, model kind, task and features."""
    digests = {
        **model_digests,
        PROFILE_ARTIFACT: hashlib.sha256(profile_text.encode("utf-8")).hexdigest(),
    }
    if request.onnx_model is not None:
        digests[ONNX_ARTIFACT] = hashlib.sha256(request.onnx_model).hexdigest()
    return {
        **request.tags,
        **logged,
        CHECKSUM_TAG: json.dumps(digests, sort_keys=True),
        "driftloop.gate": "passed" if request.gate_passed else "rejected",
        "driftloop.model_kind": request.model_kind,
        "driftloop.task": request.task,
        "driftloop.features": json.dumps(list(request.feature_names)),
    }
