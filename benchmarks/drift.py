"""Time and measure drift detection on a 1M-row window against plain NumPy, SciPy and Evidently.

    .venv/bin/python benchmarks/drift.py [--rows N] [--reference-rows N] [--columns N]
        [--shifted N] [--seed N] [--repeats N] [--nuisance SD]
        [--evidently-python PATH] [--evidently-repeats N]

Data (seeded NumPy, the same in every pipeline): a reference of ``--reference-rows`` rows and
a current window of ``--rows`` rows, ``--columns`` normal float columns, each with its own
mean and sd. ``--shifted`` of them (spread evenly) drift in the current window by a mean
shift of 0.6 to 1.0 reference sd or a change of scale (x2, x0.5); the others are drawn from
the reference's distribution (``--nuisance SD`` gives them a tiny mean shift instead).

Pipelines, each in a fresh subprocess so wall time and peak RSS are comparable:

1. driftloop: ``profile_column`` with 10 quantile bins per column (the reference profile,
   timed on its own too), the window counted into a ``BinnedSketch`` per column in one pass,
   ``decide_feature_drift`` per column; flagged at level "act" (PSI >= 0.25), "warning"
   (PSI >= 0.15) listed as well.
2. plain NumPy PSI: ``np.quantile`` edges on the reference, ``np.searchsorted`` +
   ``np.bincount`` counts, PSI with the same 0.5 pseudo-count smoothing and the same rule.
3. SciPy ``ks_2samp`` per column, flagged at p < 0.05.
4. Evidently's ``DataDriftPreset`` (Evidently 0.7 API), only where ``evidently`` imports. It
   is not a project dependency: give it its own environment and pass that interpreter, e.g.

       python3 -m uv venv /tmp/evidently-venv
       python3 -m uv pip install --python /tmp/evidently-venv/bin/python \\
           evidently numpy 'pandas<3'
       .venv/bin/python benchmarks/drift.py --evidently-python /tmp/evidently-venv/bin/python

   (Evidently 0.7.23 does not import with pandas 3, hence the pin.) The Evidently
   subprocess runs this same file and needs only numpy, pandas and evidently.

Timing: median of ``--repeats`` runs inside each subprocess (``--evidently-repeats`` for
Evidently, default 1: about a minute each), imports and data generation excluded. Memory:
peak RSS (``ru_maxrss``) of the subprocess while the pipeline runs; the high-water mark is
reset after the data is made (Linux ``/proc/self/clear_refs``), so the peak counts the
resident data, the imported libraries and the pipeline's working memory. "above data" is
that peak minus the RSS just before the first run.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Columns = dict[str, NDArray[np.float64]]

RESULT_MARK = "DRIFT-BENCH-RESULT "
PIPELINES = ("driftloop", "numpy", "scipy-ks", "evidently")
LABELS = {
    "driftloop": "driftloop",
    "numpy": "NumPy PSI",
    "scipy-ks": "SciPy KS p<.05",
    "evidently": "Evidently preset",
}
# (kind, amount) per shifted column, cycled: a mean shift in reference sds or a scale factor.
SHIFTS: tuple[tuple[str, float], ...] = (
    ("mean", 0.75),
    ("scale", 2.0),
    ("mean", -0.6),
    ("scale", 0.5),
    ("mean", 1.0),
)
BINS = 10
SMOOTHING = 0.5  # driftloop's DEFAULT_SMOOTHING, repeated so the baseline needs no driftloop
PSI_WARNING, PSI_ACT = 0.15, 0.25  # driftloop's thresholds, likewise
KS_ALPHA = 0.05
# Targets from the issue: driftloop vs Evidently speed and memory.
TARGET_SPEEDUP_EVIDENTLY = 50.0
TARGET_MEMORY_SHARE_EVIDENTLY = 0.25


@dataclass(frozen=True)
class Sizes:
    rows: int
    reference_rows: int
    columns: int
    shifted: int
    seed: int
    nuisance: float

    def argv(self) -> list[str]:
        return [
            f"--rows={self.rows}",
            f"--reference-rows={self.reference_rows}",
            f"--columns={self.columns}",
            f"--shifted={self.shifted}",
            f"--seed={self.seed}",
            f"--nuisance={self.nuisance}",
        ]


def column_names(columns: int) -> list[str]:
    return [f"f{j:02d}" for j in range(columns)]


def shifted_columns(sizes: Sizes) -> dict[str, str]:
    """Name -> description of the shift, for the ``shifted`` evenly spread columns."""
    names = column_names(sizes.columns)
    picked = [names[(i * sizes.columns) // sizes.shifted] for i in range(sizes.shifted)]
    out = {}
    for i, name in enumerate(picked):
        kind, amount = SHIFTS[i % len(SHIFTS)]
        out[name] = f"mean {amount:+g} sd" if kind == "mean" else f"scale x{amount:g}"
    return out


# --------------------------------------------------------------------------- worker side
# Everything below up to the report runs in the subprocess; numpy, scipy, pandas, driftloop
# and evidently are imported there only, so an Evidently interpreter needs none of the rest.


def make_data(sizes: Sizes) -> tuple[Columns, Columns, str]:
    """Reference and current columns (1-D, contiguous float64) and a fingerprint of them."""
    import numpy as np

    shifted = {name: i for i, name in enumerate(shifted_columns(sizes))}
    reference: Columns = {}
    current: Columns = {}
    digest = hashlib.sha256()
    for j, name in enumerate(column_names(sizes.columns)):
        meta = np.random.default_rng([sizes.seed, j, 0])
        loc, scale = float(meta.uniform(-5.0, 5.0)), float(meta.uniform(0.5, 3.0))
        ref = np.random.default_rng([sizes.seed, j, 1]).normal(loc, scale, sizes.reference_rows)
        cur = np.random.default_rng([sizes.seed, j, 2]).normal(loc, scale, sizes.rows)
        if name in shifted:
            kind, amount = SHIFTS[shifted[name] % len(SHIFTS)]
            if kind == "mean":
                cur += amount * scale
            else:
                cur -= loc
                cur *= amount
                cur += loc
        elif sizes.nuisance:
            cur += sizes.nuisance * scale
        reference[name], current[name] = ref, cur
        digest.update(ref[:1024].tobytes())
        digest.update(cur[:1024].tobytes())
    return reference, current, digest.hexdigest()[:12]


def run_driftloop(names: list[str], reference: Columns, current: Columns) -> Callable[[], dict]:
    from driftloop.monitoring.drift import decide_feature_drift
    from driftloop.monitoring.sketch import BinnedSketch
    from driftloop.statistics.profile import profile_column

    def once() -> dict:
        started = time.perf_counter()
        profiles = {name: profile_column(reference[name], BINS) for name in names}
        built = time.perf_counter()
        sketches = {name: BinnedSketch.from_profile(p) for name, p in profiles.items()}
        for name in names:  # one pass over the window, column by column
            sketches[name].update(current[name])
        decisions = {
            name: decide_feature_drift(profiles[name].counts, sketches[name].counts)
            for name in names
        }
        done = time.perf_counter()
        return {
            "seconds": done - started,
            "reference_seconds": built - started,
            "flagged": [n for n, d in decisions.items() if d.level == "act"],
            "warning": [n for n, d in decisions.items() if d.level in ("warning", "act")],
            "scores": {n: d.psi for n, d in decisions.items()},
        }

    return once


def run_numpy(names: list[str], reference: Columns, current: Columns) -> Callable[[], dict]:
    import numpy as np

    probs = np.linspace(0.0, 1.0, BINS + 1)[1:-1]

    def once() -> dict:
        started = time.perf_counter()
        edges, ref_counts = {}, {}
        for name in names:
            edges[name] = np.quantile(reference[name], probs)
            idx = np.searchsorted(edges[name], reference[name])
            ref_counts[name] = np.bincount(idx, minlength=BINS)
        built = time.perf_counter()
        scores = {}
        for name in names:
            idx = np.searchsorted(edges[name], current[name])
            cur = np.bincount(idx, minlength=len(edges[name]) + 1) + SMOOTHING
            ref = ref_counts[name] + SMOOTHING
            r, c = ref / ref.sum(), cur / cur.sum()
            scores[name] = float(np.sum((c - r) * np.log(c / r)))
        done = time.perf_counter()
        return {
            "seconds": done - started,
            "reference_seconds": built - started,
            "flagged": [n for n, s in scores.items() if s >= PSI_ACT],
            "warning": [n for n, s in scores.items() if s >= PSI_WARNING],
            "scores": scores,
        }

    return once


def run_scipy_ks(names: list[str], reference: Columns, current: Columns) -> Callable[[], dict]:
    from scipy import stats

    def once() -> dict:
        started = time.perf_counter()
        pvalues = {
            name: float(stats.ks_2samp(reference[name], current[name]).pvalue) for name in names
        }
        return {
            "seconds": time.perf_counter() - started,
            "flagged": [n for n, p in pvalues.items() if p < KS_ALPHA],
            "scores": pvalues,
        }

    return once


def run_evidently(names: list[str], reference: Any, current: Any) -> Callable[[], dict]:
    """``reference`` and ``current`` are pandas DataFrames here."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    def once() -> dict:
        started = time.perf_counter()
        definition = DataDefinition(numerical_columns=names)
        snapshot = Report([DataDriftPreset()], include_tests=True).run(
            Dataset.from_pandas(current, data_definition=definition),
            Dataset.from_pandas(reference, data_definition=definition),
        )
        result = snapshot.dict()
        done = time.perf_counter()
        scores, methods, flagged = {}, set(), []
        for metric in result["metrics"]:
            config = metric["config"]
            if config.get("type", "").endswith("ValueDrift"):
                scores[config["column"]] = float(metric["value"])
                methods.add(f"{config['method']}, threshold {config['threshold']:g}")
        for test in result["tests"]:
            params = test["metric_config"]["params"]
            if params.get("type", "").endswith("ValueDrift") and test["status"] == "FAIL":
                flagged.append(params["column"])
        return {
            "seconds": done - started,
            "flagged": sorted(flagged),
            "scores": scores,
            "method": "; ".join(sorted(methods)),
        }

    return once


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return peak_rss_mb()


def reset_peak_rss() -> bool:
    """Reset the RSS high-water mark (Linux >= 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def worker(pipeline: str, sizes: Sizes, repeats: int) -> dict:
    started = time.perf_counter()
    try:
        import numpy

        factory = {
            "driftloop": run_driftloop,
            "numpy": run_numpy,
            "scipy-ks": run_scipy_ks,
            "evidently": run_evidently,
        }[pipeline]
        if pipeline == "evidently":
            import evidently
            import pandas as pd

            versions = f"evidently {evidently.__version__}, pandas {pd.__version__}"
        else:
            versions = f"numpy {numpy.__version__}"
    except ImportError as exc:
        return {"skipped": f"{type(exc).__name__}: {exc}", "python": sys.executable}
    names = column_names(sizes.columns)
    reference, current, fingerprint = make_data(sizes)
    if pipeline == "evidently":
        reference, current = pd.DataFrame(reference), pd.DataFrame(current)
    once = factory(names, reference, current)  # imports the pipeline's libraries
    import_seconds = time.perf_counter() - started
    gc.collect()
    reset = reset_peak_rss()
    before = current_rss_mb()
    runs = [once() for _ in range(repeats)]
    peak = peak_rss_mb()
    last = runs[-1]
    out = {
        **last,
        "seconds": statistics.median(r["seconds"] for r in runs),
        "all_seconds": [r["seconds"] for r in runs],
        "peak_rss_mb": peak,
        "before_rss_mb": before,
        "peak_reset": reset,
        "fingerprint": fingerprint,
        "versions": versions,
        "setup_seconds": import_seconds,
        "python": sys.executable,
    }
    if "reference_seconds" in last:
        out["reference_seconds"] = statistics.median(r["reference_seconds"] for r in runs)
    if any(r["flagged"] != last["flagged"] for r in runs):
        out["unstable"] = True
    return out


# --------------------------------------------------------------------------- driver side


def run_pipeline(python: str, pipeline: str, sizes: Sizes, repeats: int) -> dict:
    cmd = [
        python,
        str(Path(__file__).resolve()),
        f"--worker={pipeline}",
        f"--repeats={repeats}",
        *sizes.argv(),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        return {"failed": f"cannot start it: {exc}", "python": python}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict = json.loads(line[len(RESULT_MARK) :])
            return result
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
    return {"failed": f"exit code {proc.returncode}\n{tail}", "python": python}


def verdict(flagged: Sequence[str], truth: set[str]) -> str:
    extra, missed = sorted(set(flagged) - truth), sorted(truth - set(flagged))
    if not extra and not missed:
        return "[green]yes[/green]"
    parts = [f"+{n}" for n in extra] + [f"-{n}" for n in missed]
    shown = " ".join(parts) if len(parts) <= 3 else f"{len(extra)} extra, {len(missed)} missed"
    return f"[red]no[/red] ({shown})"


def flagged_text(flagged: Sequence[str], columns: int) -> str:
    shown = " ".join(flagged) if len(flagged) <= 6 else " ".join(flagged[:5]) + " ..."
    return f"{len(flagged)}/{columns}: {shown}" if flagged else f"0/{columns}"


def ratio_text(ours: float, theirs: float, unit: str) -> str:
    return f"{theirs / ours:.1f}x {unit}" if ours <= theirs else f"{ours / theirs:.2f}x slower"


def mark(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]missed[/red]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the window")
    parser.add_argument("--reference-rows", type=int, default=100_000)
    parser.add_argument("--columns", type=int, default=20)
    parser.add_argument("--shifted", type=int, default=5, help="columns that drift")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="runs per pipeline (median)")
    parser.add_argument(
        "--evidently-repeats",
        type=int,
        default=1,
        help="runs of the Evidently pipeline (about a minute each)",
    )
    parser.add_argument(
        "--nuisance",
        type=float,
        default=0.0,
        metavar="SD",
        help="tiny mean shift (in reference sds) of the columns that do not drift",
    )
    parser.add_argument(
        "--evidently-python",
        metavar="PATH",
        help="interpreter with evidently, numpy and pandas, for the Evidently pipeline",
    )
    parser.add_argument("--worker", choices=PIPELINES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 0 <= args.shifted <= args.columns or min(args.rows, args.reference_rows) < 2:
        parser.error("need 0 <= --shifted <= --columns and at least 2 rows on each side")
    if min(args.repeats, args.evidently_repeats) < 1:
        parser.error("--repeats and --evidently-repeats must be >= 1")
    sizes = Sizes(
        args.rows, args.reference_rows, args.columns, args.shifted, args.seed, args.nuisance
    )
    if args.worker:
        result = worker(args.worker, sizes, args.repeats)
        print(RESULT_MARK + json.dumps(result), flush=True)
        return
    report(sizes, args.repeats, args.evidently_repeats, args.evidently_python)


def report(
    sizes: Sizes, repeats: int, evidently_repeats: int, evidently_python: str | None
) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    truth = shifted_columns(sizes)
    results: dict[str, dict] = {}
    for pipeline in PIPELINES:
        python = evidently_python if pipeline == "evidently" and evidently_python else None
        runs = evidently_repeats if pipeline == "evidently" else repeats
        with console.status(f"running {LABELS[pipeline]} ({runs}x) in a subprocess"):
            results[pipeline] = run_pipeline(python or sys.executable, pipeline, sizes, runs)

    title = (
        f"drift on {sizes.rows:,} rows vs a {sizes.reference_rows:,}-row reference, "
        f"{sizes.columns} columns, {sizes.shifted} shifted (seed {sizes.seed})"
    )
    table = Table(title=title)
    for column in (
        "pipeline",
        "seconds",
        "ref s",
        "peak RSS MB",
        "above data MB",
        "flagged",
        "correct",
    ):
        left = column in ("pipeline", "flagged", "correct")
        table.add_column(column, justify="left" if left else "right")
    ran = {p: r for p, r in results.items() if "seconds" in r}
    for pipeline, r in ran.items():
        ref_s = r.get("reference_seconds")
        table.add_row(
            LABELS[pipeline] + (" [yellow](unstable)[/yellow]" if r.get("unstable") else ""),
            f"{r['seconds']:.3f}",
            "-" if ref_s is None else f"{ref_s:.3f}",
            f"{r['peak_rss_mb']:.0f}",
            f"{r['peak_rss_mb'] - r['before_rss_mb']:.0f}",
            flagged_text(r["flagged"], sizes.columns),
            verdict(r["flagged"], set(truth)),
        )
    console.print(table)

    console.print("shifted: " + ", ".join(f"{n} ({d})" for n, d in truth.items()))
    prints = {r["fingerprint"] for r in ran.values()}
    if len(prints) > 1:
        console.print(f"[red]the pipelines saw different data[/red] (fingerprints {prints})")
    if any(not r["peak_reset"] for r in ran.values()):
        console.print("[yellow]peak RSS could not be reset: it includes data generation[/yellow]")
    for pipeline, r in results.items():
        if "skipped" in r:
            console.print(
                f"{LABELS[pipeline]}: skipped, not importable with {r['python']} ({r['skipped']}). "
                "Install it in a separate venv (pip install evidently numpy 'pandas<3') and pass "
                "--evidently-python PATH/TO/THAT/python."
            )
        elif "failed" in r:
            console.print(f"[red]{LABELS[pipeline]} failed[/red] with {r['python']}: {r['failed']}")
    details(console, results, truth, sizes)
    compare(console, results)


def details(console: Any, results: dict[str, dict], truth: dict[str, str], sizes: Sizes) -> None:
    ours, plain = results["driftloop"], results["numpy"]
    if "seconds" in ours:
        psis, window = ours["scores"], ours["seconds"] - ours["reference_seconds"]
        line = (
            f"driftloop: reference profile built in {ours['reference_seconds']:.3f} s, "
            f"window counted and judged in {window:.3f} s (medians of "
            f"{len(ours['all_seconds'])}); reaching warning (PSI >= {PSI_WARNING}): "
            f"{flagged_text(ours['warning'], sizes.columns)}"
        )
        others = [v for n, v in psis.items() if n not in truth]
        if truth and others:
            line += (
                f"; PSI of the shifted {min(psis[n] for n in truth):.3f} to "
                f"{max(psis[n] for n in truth):.3f}, of the others at most "
                f"{max(others):.4f}"
            )
        console.print(line + ".")
        if "seconds" in plain:
            diff = max(abs(psis[n] - plain["scores"][n]) for n in psis)
            console.print(f"driftloop vs plain NumPy PSI: largest |PSI difference| {diff:.2e}.")
    ks = results["scipy-ks"]
    if "seconds" in ks:
        false = sorted(set(ks["flagged"]) - set(truth))
        unshifted = sizes.columns - len(truth)
        chance = 1 - (1 - KS_ALPHA) ** unshifted
        console.print(
            f"SciPy KS: {len(false)} of the {unshifted} columns without drift flagged "
            f"({', '.join(false) or 'none'}). A p-value answers 'is there any difference', "
            f"not 'is it big': each undrifted column is flagged with probability {KS_ALPHA} "
            f"even when nothing changed (P(at least one of {unshifted}) = {chance:.0%}), and "
            f"at {sizes.rows:,} rows any real-world wobble is 'significant' (see --nuisance "
            "0.02); driftloop judges effect size (PSI) instead."
        )
    ev = results["evidently"]
    if "seconds" in ev:
        console.print(
            f"Evidently ({ev['versions']}, {ev['python']}): per-column test {ev['method']}; "
            f"import + data took {ev['setup_seconds']:.1f} s (not in the table"
            + (f"; driftloop's: {ours['setup_seconds']:.1f} s)." if "seconds" in ours else ").")
        )


def compare(console: Any, results: dict[str, dict]) -> None:
    ours = results["driftloop"]
    if "seconds" not in ours:
        return
    for pipeline in ("numpy", "scipy-ks", "evidently"):
        theirs = results[pipeline]
        if "seconds" not in theirs:
            continue
        speed = theirs["seconds"] / ours["seconds"]
        memory = ours["peak_rss_mb"] / theirs["peak_rss_mb"]
        same = sorted(ours["flagged"]) == sorted(theirs["flagged"])
        line = (
            f"driftloop vs {LABELS[pipeline].removeprefix('baseline: ')}: "
            f"{ratio_text(ours['seconds'], theirs['seconds'], 'faster')}, "
            f"peak RSS {memory:.2f}x theirs, "
            f"{'same verdicts' if same else 'different verdicts'}"
        )
        if pipeline == "numpy":
            window = (ours["seconds"] - ours["reference_seconds"]) / (
                theirs["seconds"] - theirs["reference_seconds"]
            )
            line += (
                f"; window part alone {window:.2f}x their time; "
                f"targets: faster {mark(speed > 1)}, same verdicts {mark(same)}"
            )
        elif pipeline == "evidently":
            line += (
                f"; targets: >= {TARGET_SPEEDUP_EVIDENTLY:g}x faster "
                f"{mark(speed >= TARGET_SPEEDUP_EVIDENTLY)}, <= "
                f"{TARGET_MEMORY_SHARE_EVIDENTLY:g} of its memory "
                f"{mark(memory <= TARGET_MEMORY_SHARE_EVIDENTLY)}, "
                f"same verdicts {mark(same)}"
            )
        console.print(line + ".")


if __name__ == "__main__":
    main()
