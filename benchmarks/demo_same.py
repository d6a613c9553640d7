"""Whether two ``driftloop demo --json`` outputs tell the same story.

    .venv/bin/driftloop demo --project /tmp/a --json > a.json   # before a change
    .venv/bin/driftloop demo --project /tmp/b --json > b.json   # after it, same seed
    .venv/bin/python benchmarks/demo_same.py a.json b.json

Every field must be equal (key numbers, events with their evidence to the last digit,
versions, decisions) except what is measured or placed: the project and report paths,
elapsed seconds and latencies (p99 ratios, milliseconds in messages). Exit 0 when the
same, 1 with the differing fields listed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

VOLATILE_KEY = re.compile(r"latency|p99|_ms$|^project$|^report$|path|elapsed|seconds", re.I)
PATH = re.compile(r"/\S+")
MILLISECONDS = re.compile(r"\d+(\.\d+)?\s*ms\b")


def normalized(value: Any) -> Any:
    """``value`` with measured latencies and paths replaced by placeholders."""
    if isinstance(value, dict):
        return {
            k: "<measured>" if VOLATILE_KEY.search(k) else normalized(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [normalized(v) for v in value]
    if isinstance(value, str):
        return MILLISECONDS.sub("<ms>", PATH.sub("<path>", value))
    return value


def differences(a: Any, b: Any, where: str = "") -> list[tuple[str, Any, Any]]:
    """Every field where ``a`` and ``b`` differ, by its path."""
    if type(a) is not type(b):
        return [(where, a, b)]
    if isinstance(a, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += differences(a.get(key), b.get(key), f"{where}.{key}")
        return out
    if isinstance(a, list):
        out = [(f"{where}.len", len(a), len(b))] if len(a) != len(b) else []
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            out += differences(x, y, f"{where}[{i}]")
        return out
    return [] if a == b else [(where, a, b)]


def _load(path: Path) -> Any:
    # A wrapper (a profiler) may print lines of its own around the JSON.
    text = path.read_text(encoding="utf-8")
    return json.JSONDecoder().raw_decode(text, text.index("{"))[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    found = differences(normalized(_load(args.before)), normalized(_load(args.after)))
    for where, x, y in found[:50]:
        print(f"{where}: {str(x)[:120]!r} -> {str(y)[:120]!r}")
    print(f"{len(found)} difference(s)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
