"""One shape for every project: no code outside the layouts asks which layout it has."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from driftloop.features.layout import ProjectLayout
from driftloop.features.retail import RetailLayout
from driftloop.features.table_layout import TableLayout

SRC = Path(__file__).resolve().parents[1] / "src" / "driftloop"
# The layouts themselves, and the factory that picks one from the config.
LAYOUTS = {"features/layout.py", "features/retail.py", "features/table_layout.py"}
# The config writes the section that names the kind (a table's ``data``, else a scenario).
OWNERS = LAYOUTS | {"config/__init__.py"}
KIND_BRANCHES = {
    "is_table": re.compile(r"\bis_table\b"),
    "a layout's kind": re.compile(r"\bkind\s*[!=]=\s*[\"'](table|retail)[\"']"),
    "isinstance of a layout": re.compile(r"isinstance\([^)]*Layout\b"),
    "the config's data section": re.compile(r"config\.data\s+is\s+(not\s+)?None"),
    "a duck-typed layout member": re.compile(r"getattr\([^)]*layout"),
    "a union of layouts": re.compile(r"type:\s*ignore\[union-attr\]"),
}


def _sources() -> list[tuple[str, str]]:
    return [
        (str(p.relative_to(SRC)), p.read_text(encoding="utf-8")) for p in sorted(SRC.rglob("*.py"))
    ]


def test_no_module_outside_the_layouts_branches_on_the_layout_kind() -> None:
    found = [
        f"{name}:{text[: m.start()].count(chr(10)) + 1}: {what}"
        for name, text in _sources()
        if name not in OWNERS
        for what, pattern in KIND_BRANCHES.items()
        for m in pattern.finditer(text)
    ]
    assert found == []


# Below ``features/``: the project's paths and config, the monitoring statistics, the
# registry. They take entity keys and names as arguments, never a layout.
BELOW_FEATURES = ("project.py", "config/", "monitoring/", "registry/")


def test_nothing_below_the_features_imports_them() -> None:
    """``project.py`` is paths and config, below ``features/``: features import it, never
    the other way round; monitoring gets the entity keys from its caller."""
    upward = re.compile(r"^\s*(?:from|import) driftloop\.features\b.*$", re.M)
    found = [
        f"{name}: {line.strip()}"
        for name, text in _sources()
        if name.startswith(BELOW_FEATURES)
        for line in upward.findall(text)
    ]
    assert found == []


@pytest.mark.parametrize("layout", [RetailLayout, TableLayout])
def test_each_layout_class_defines_every_protocol_member(layout: type) -> None:
    members = [n for n in vars(ProjectLayout) if not n.startswith("_")]
    assert len(members) > 20
    assert [n for n in members if not hasattr(layout, n)] == []
