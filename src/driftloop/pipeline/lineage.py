"""Lineage of a training run: where its data, features and code came from."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pandas as pd

import driftloop

__all__ = ["driftloop_source", "frame_digest", "git_commit", "pip_requirements"]


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 over a frame's column names and row hashes (order-sensitive)."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, frame.columns)).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def git_commit(folder: Path) -> str | None:
    """The commit checked out in ``folder`` (``+dirty`` if changed), or None outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def driftloop_source() -> Path:
    """Folder of the installed driftloop package (a git checkout when installed editable)."""
    return Path(driftloop.__file__).resolve().parent


_RUNTIME = {
    "onnx": ("numpy", "onnxruntime"),
    "lightgbm": ("numpy", "lightgbm"),
    "sklearn": ("numpy", "scikit-learn", "skops"),
}


def pip_requirements(kind: str) -> list[str]:
    """Pinned packages (installed versions) that load a model of ``kind``."""
    from importlib.metadata import version as dist_version

    return [f"{n}=={dist_version(n)}" for n in _RUNTIME[kind]]
