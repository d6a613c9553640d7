"""Seeded canary-rollout simulation: the always-valid step judge against a fixed-window policy.

    .venv/bin/python benchmarks/canary.py [--trials N] [--seed N] [--rate N] [--alpha A]
        [--guard-min-requests N] [--label-trials N] [--per-day N] [--delay-days D]

Simulated (counts only, no serving): steps 10% -> 50% -> 100% of ``--rate`` requests a 10 s
tick; the 10% and 50% steps are judged (100% is the promotion), each with a fresh window.
Stable: 1% errors (0.5% and 2% in two more A/A rows), lognormal latency (median 50 ms,
sigma 0.4) binned into 800 log-spaced bins, predictions over 5 classes. Scenarios: A/A
(canary identical) at each stable error rate, errors 1% -> 5%, latency x1.30 on every
request, predictions shifted (KL(canary || stable) ~0.145). Both policies see the same
seeded counts:

* driftloop: ``judge_step`` every tick on the step's cumulative counts (p99s, the canary's
  count above the stable p99 bin and above 1.1x / 1.2x it read off the histograms, the
  class counts and their KL with 0.5 pseudo-counts), ``StepPolicy(alpha=--alpha / 2,
  min_requests=1000, guard_min_requests=...)``, spec defaults otherwise (min 300 s,
  deadline 1800 s a step).
* fixed window (like Flagger's analysis; the named baseline): each window of 10, 30 or
  60 s is one check on its own counts, failed when its error rate > 2%, p99 ratio > 1.20
  or KL > 0.1; rollback after ``threshold`` failed checks in a step, promotion on a passing
  check once the same minimum duration and requests have passed, rollback at the same
  deadline. Per window length the smallest threshold in 1..20 with A/A (stable 1% errors)
  false rollbacks <= 1% is taken, then the length with the least median bad-canary
  exposure: calibrated in-sample, which favours it.

"Exposure" is canary requests served before the rollback (all steps), over trials that rolled
back. Not measured: real serving, time-varying traffic, or correlated requests.

Slow labels (``--label-trials``): a classifier's rollout held at 10 % while its labels come
a lognormal ``--delay-days`` (median, sigma 0.8) after each of ``--per-day`` requests a
day; days until a decision, looked at daily for 60 days. "Paired, else slice labels" is
the controller's rule with ``rollout.paired`` on: the canary scores the champion's 90 % in
shadow and each label judges both (``paired_evidence``); until that test decides, the
canary slice's own labels against the stable's (``outcome_evidence``, the rule before).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table
from scipy.special import ndtr

from canary_labels import slow_labels
from driftloop.rollout import StepObservation, StepPolicy, judge_step, next_weight

STEPS = (10.0, 50.0, 100.0)
TICK_S = 10.0
WINDOWS = (1, 3, 6)  # fixed-window analysis intervals, in ticks (10 s, 30 s, 60 s)
CLASSES = np.array([0.40, 0.25, 0.15, 0.12, 0.08])
SHIFTED = np.array([0.22, 0.25, 0.15, 0.15, 0.23])
EDGES = np.geomspace(0.001, 5.0, 801)
CENTRES = np.sqrt(EDGES[:-1] * EDGES[1:])


@dataclass(frozen=True)
class Scenario:
    """Stable and canary error rates, canary latency factor, shifted canary predictions."""

    name: str
    stable_errors: float = 0.01
    canary_errors: float = 0.01
    slowdown: float = 1.0
    shifted: bool = False

    @property
    def bad(self) -> bool:
        return (self.canary_errors, self.slowdown, self.shifted) != (self.stable_errors, 1.0, False)


SCENARIOS = (
    Scenario("A/A, stable 1% errors"),
    Scenario("A/A, stable 0.5% errors", 0.005, 0.005),
    Scenario("A/A, stable 2% errors", 0.02, 0.02),
    Scenario("errors 1%->5%", canary_errors=0.05),
    Scenario("latency +30%", slowdown=1.3),
    Scenario("predictions shifted", shifted=True),
)
CALIBRATION = SCENARIOS[0].name  # the fixed window's thresholds are calibrated on this A/A


def _latency_probs(scale: float) -> NDArray[np.float64]:
    """Bin probabilities of the lognormal latency, median 50 ms x ``scale``."""
    z = (np.log(EDGES) - np.log(0.050 * scale)) / 0.4
    p = np.diff(ndtr(z))
    p[-1] += 1.0 - p.sum()
    p = np.clip(p, 0.0, None)
    return np.asarray(p / p.sum(), dtype=np.float64)


@dataclass(frozen=True)
class Stream:
    """One step's per-interval counts for canary (c) and stable (s)."""

    n_c: int
    n_s: int
    err_c: NDArray[np.int64]
    err_s: NDArray[np.int64]
    lat_c: NDArray[np.int64]
    lat_s: NDArray[np.int64]
    cls_c: NDArray[np.int64]
    cls_s: NDArray[np.int64]


def _stream(rng: np.random.Generator, sc: Scenario, weight: float, rate: int, k: int) -> Stream:
    """Per-tick counts; ``rate`` is requests a tick."""
    n_c = round(rate * weight / 100)
    n_s = rate - n_c
    base = _latency_probs(1.0)
    return Stream(
        n_c,
        n_s,
        rng.binomial(n_c, sc.canary_errors, k),
        rng.binomial(n_s, sc.stable_errors, k),
        rng.multinomial(n_c, _latency_probs(sc.slowdown) if sc.slowdown != 1.0 else base, k),
        rng.multinomial(n_s, base, k),
        rng.multinomial(n_c, SHIFTED if sc.shifted else CLASSES, k),
        rng.multinomial(n_s, CLASSES, k),
    )


def _p99_bin(hist: NDArray[np.int64]) -> NDArray[np.intp]:
    """Index of the bin holding the 99th percentile, along the last axis."""
    cum = np.cumsum(hist, axis=-1)
    return np.asarray((cum < 0.99 * cum[..., -1:]).sum(axis=-1), dtype=np.intp)


def _kl(c: NDArray[np.int64], s: NDArray[np.int64]) -> NDArray[np.float64]:
    p = (c + 0.5) / (c + 0.5).sum(axis=-1, keepdims=True)
    q = (s + 0.5) / (s + 0.5).sum(axis=-1, keepdims=True)
    return np.asarray((p * np.log(p / q)).sum(axis=-1), dtype=np.float64)


def _judge_stream(st: Stream, policy: StepPolicy) -> tuple[str, int, str]:
    """Run judge_step every interval on cumulative counts: (decision, canary requests, why)."""
    lat_c, lat_s = np.cumsum(st.lat_c, axis=0), np.cumsum(st.lat_s, axis=0)
    err_c, err_s = np.cumsum(st.err_c), np.cumsum(st.err_s)
    kl = _kl(np.cumsum(st.cls_c, axis=0), np.cumsum(st.cls_s, axis=0))
    cls_c, cls_s = np.cumsum(st.cls_c, axis=0), np.cumsum(st.cls_s, axis=0)
    bc, bs = _p99_bin(lat_c), _p99_bin(lat_s)
    # first bin whose centre is above ratio x the stable p99 (the p99 gates' counts)
    b_prom = np.searchsorted(CENTRES, CENTRES[bs] * policy.promote_p99_ratio, side="right")
    b_roll = np.searchsorted(CENTRES, CENTRES[bs] * policy.rollback_p99_ratio, side="right")
    tail = np.cumsum(lat_c[:, ::-1], axis=1)[:, ::-1]  # tail[i, b]: requests in bins >= b
    tail = np.concatenate([tail, np.zeros((tail.shape[0], 1), dtype=tail.dtype)], axis=1)
    for i in range(len(err_c)):
        n_c, n_s = st.n_c * (i + 1), st.n_s * (i + 1)
        obs = StepObservation(
            canary_requests=n_c,
            canary_errors=int(err_c[i]),
            stable_requests=n_s,
            stable_errors=int(err_s[i]),
            canary_slow=int(lat_c[i, bs[i] + 1 :].sum()),
            canary_p99_s=float(CENTRES[bc[i]]),
            stable_p99_s=float(CENTRES[bs[i]]),
            kl=float(kl[i]),
            elapsed_s=TICK_S * (i + 1),
            canary_over_promote_p99=int(tail[i, b_prom[i]]),
            canary_over_rollback_p99=int(tail[i, b_roll[i]]),
            canary_predictions=tuple(cls_c[i].tolist()),
            stable_predictions=tuple(cls_s[i].tolist()),
        )
        verdict = judge_step(obs, policy)
        if verdict.decision != "wait":
            return verdict.decision, n_c, verdict.reason
    raise RuntimeError("judge_step never decided before the stream ended")


def _window_fails(st: Stream, ticks: int) -> NDArray[np.bool_]:
    """Fixed-window checks: each window of ``ticks`` ticks judged on its own counts."""

    def windows(x: NDArray[np.int64]) -> NDArray[np.int64]:
        summed = x.reshape(x.shape[0] // ticks, ticks, *x.shape[1:]).sum(axis=1)
        return np.asarray(summed, dtype=np.int64)

    n_c = st.n_c * ticks
    ratio = CENTRES[_p99_bin(windows(st.lat_c))] / CENTRES[_p99_bin(windows(st.lat_s))]
    kl = _kl(windows(st.cls_c), windows(st.cls_s))
    fails = (windows(st.err_c) / n_c > 0.02) | (ratio > 1.20) | (kl > 0.1)
    return np.asarray(fails, dtype=np.bool_)


def _fixed_stream(
    fails: NDArray[np.bool_], n_c: int, policy: StepPolicy, threshold: int, ticks: int
) -> tuple[str, int]:
    """Flagger-like: rollback after ``threshold`` failed windows, promote on a passing one."""
    n_c *= ticks
    min_i = max(policy.min_duration_s / (TICK_S * ticks), policy.min_requests / n_c)
    failed = 0
    for i, fail in enumerate(fails):
        failed += int(fail)
        if failed >= threshold:
            return "rollback", n_c * (i + 1)
        if not fail and i + 1 >= min_i:
            return "promote", n_c * (i + 1)
    return "rollback", n_c * len(fails)


@dataclass(frozen=True)
class Outcome:
    """A rollout's end: rolled back or not, at which step, canary exposure, reason."""

    rolled_back: bool
    step: int
    exposure: int
    reason: str


def _rollout(streams: list[Stream], decide: list[tuple[str, int, str]]) -> Outcome:
    exposure = 0
    for step, (decision, served, reason) in enumerate(decide):
        exposure += served
        if decision == "rollback":
            return Outcome(True, step, exposure, reason)
    return Outcome(False, len(streams), exposure, "promoted")


Config = tuple[int, int]  # (window ticks, failure threshold)


def simulate(
    trials: int, seed: int, rate: int, alpha: float, guard: int
) -> tuple[dict[str, list[Outcome]], dict[str, dict[Config, list[Outcome]]]]:
    """Both policies on the same seeded streams; fixed window for every window and threshold."""
    policy = StepPolicy(
        alpha=alpha / 2, min_requests=1000, guard_min_requests=guard, p99_slack_s=0.0
    )
    ticks = round(policy.max_duration_s / TICK_S)
    judged = [w for w in STEPS if next_weight(STEPS, w) is not None]
    configs = [(w, t) for w in WINDOWS for t in range(1, 21)]
    ours: dict[str, list[Outcome]] = {}
    fixed: dict[str, dict[Config, list[Outcome]]] = {}
    for s_i, sc in enumerate(SCENARIOS):
        rng = np.random.default_rng([seed, s_i])
        scenario = sc.name
        ours[scenario], fixed[scenario] = [], {c: [] for c in configs}
        for _ in range(trials):
            streams = [_stream(rng, sc, w, rate, ticks) for w in judged]
            ours[scenario].append(_rollout(streams, [_judge_stream(st, policy) for st in streams]))
            fails = {w: [_window_fails(st, w) for st in streams] for w in WINDOWS}
            for (w, t), out in fixed[scenario].items():
                runs = [
                    (*_fixed_stream(f, st.n_c, policy, t, w), "")
                    for f, st in zip(fails[w], streams, strict=True)
                ]
                out.append(_rollout(streams, runs))
    return ours, fixed


def _rate(outs: list[Outcome]) -> float:
    return sum(o.rolled_back for o in outs) / len(outs)


def _exposure(outs: list[Outcome]) -> tuple[float, float]:
    xs = [o.exposure for o in outs if o.rolled_back]
    return (float(np.median(xs)), float(np.percentile(xs, 90))) if xs else (float("nan"),) * 2


def main() -> None:
    """Run the simulations and print the comparison tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--rate", type=int, default=500, help="requests per 10 s tick")
    parser.add_argument("--alpha", type=float, default=0.01, help="A/A budget per rollout")
    parser.add_argument("--guard-min-requests", type=int, default=1000)
    parser.add_argument("--label-trials", type=int, default=200)
    parser.add_argument("--per-day", type=int, default=200, help="slow labels: requests a day")
    parser.add_argument("--delay-days", type=float, default=10.0, help="median label delay")
    args = parser.parse_args()
    console = Console(width=140)
    if args.trials > 0:
        _canary_table(args, console)
    if args.label_trials > 0:
        started = time.perf_counter()
        console.print(slow_labels(args.label_trials, args.seed, args.per_day, 60, args.delay_days))
        console.print(
            "paired: the canary scores the champion's 90 % in shadow, each label judges both "
            "(always-valid test on per-request log-loss differences, PairedConfig defaults); "
            "slice labels: the rule before paired evidence, the ranking-error gate on each "
            f"version's own labels (OutcomeGateConfig defaults); "
            f"{time.perf_counter() - started:.1f} s"
        )


def _canary_table(args: argparse.Namespace, console: Console) -> None:
    """The canary judge against the fixed-window policy, on the same seeded streams."""
    start = time.perf_counter()
    ours, fixed = simulate(args.trials, args.seed, args.rate, args.alpha, args.guard_min_requests)
    budget = 0.01
    bad = [sc.name for sc in SCENARIOS if sc.bad]
    candidates = [  # per window length, the smallest threshold meeting the A/A budget
        next(((w, t) for t in range(1, 21) if _rate(fixed[CALIBRATION][(w, t)]) <= budget), (w, 20))
        for w in WINDOWS
    ]
    best = min(candidates, key=lambda c: sum(_exposure(fixed[s][c])[0] for s in bad))
    theirs = {sc.name: fixed[sc.name][best] for sc in SCENARIOS}
    label = f"fixed window ({best[0] * TICK_S:g} s, threshold {best[1]})"
    table = Table(title=f"Canary judge vs fixed window ({args.trials} trials, seed {args.seed})")
    for col in ("scenario", "measure", "driftloop", label, "target"):
        table.add_column(col)
    for sc in SCENARIOS:
        if sc.bad:
            continue
        mine, other = ours[sc.name], theirs[sc.name]
        count = sum(o.rolled_back for o in mine)
        table.add_row(
            sc.name,
            "false rollbacks",
            f"{_rate(mine):.2%} ({count}/{args.trials})",
            f"{_rate(other):.2%}",
            "<= 1%",
        )
        reasons: dict[str, int] = {}
        for o in mine:
            if o.rolled_back:
                key = f"step {o.step + 1}: " + o.reason.split(" (")[0]
                reasons[key] = reasons.get(key, 0) + 1
        for reason, n in sorted(reasons.items()):
            table.add_row("", f"  {reason}", str(n), "", "")
    for scenario in bad:
        mine, other = ours[scenario], theirs[scenario]
        caught = [sum(o.rolled_back and o.step == 0 for o in x) / len(x) for x in (mine, other)]
        table.add_row(
            scenario, "caught in step 1", f"{caught[0]:.1%}", f"{caught[1]:.1%}", ">= 99%"
        )
        (m_med, m_p90), (t_med, t_p90) = _exposure(mine), _exposure(other)
        table.add_row(
            "",
            "canary requests before rollback, median (p90)",
            f"{m_med:,.0f} ({m_p90:,.0f})",
            f"{t_med:,.0f} ({t_p90:,.0f})",
            "",
        )
        table.add_row(
            "", "exposure ratio driftloop / fixed (medians)", f"{m_med / t_med:.2f}", "", "<= 0.33"
        )
    console.print(table)
    console.print(
        f"{args.rate} requests / {TICK_S:g} s tick, driftloop judges every tick; steps {STEPS}; "
        f"per-step alpha {args.alpha / 2:g}; fixed window: per window length "
        f"{[w * TICK_S for w in WINDOWS]} s the smallest threshold with A/A ({CALIBRATION}) <= "
        f"{budget:.0%} (in-sample), then the length with least bad-canary exposure: "
        f"{[(w * TICK_S, t) for w, t in candidates]}; {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
