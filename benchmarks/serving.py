"""Serving speed, in one run: driftloop against hand-written servers doing the same work.

    apt-get install -y wrk          # the load generator (Debian package)
    .venv/bin/python benchmarks/serving.py [--duration 10] [--rounds 1] [--no-mlflow]

V2 inference (one fixed single-row request at 1 and 8 connections): driftloop against a
bare FastAPI + ONNX Runtime endpoint and `mlflow models serve` on the same version.
Entity predictions (`POST /v1/predict`, 1 entity and a batch of 100, at 1 and 16
connections): driftloop against two floors, a bare FastAPI server that looks the row up
in Feast's online store and one that holds every row in a dict, both calling ONNX
Runtime on the same model; every server's predictions are checked equal first.

Every server is its own process on 127.0.0.1; runs are interleaved (each
configuration on every server in turn, ``--rounds`` times, medians reported), so the
ratios compare servers under the same machine load. driftloop runs with routing, the
prediction log, Prometheus metrics and live monitoring on. Targets: issues 4 and 21.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from fastapi import (
    Depends,
    Request,
    Response,
)  # module level: FastAPI resolves handler annotations here
from rich.console import Console
from rich.table import Table

console = Console()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_app(model_path: str) -> Any:
    """The baseline: FastAPI parsing the same V2 JSON, calling ONNX Runtime and answering
    what the protocol requires of a response (model name, the request's id, each output's
    name, datatype, shape and data), nothing else."""
    import numpy as np
    import onnxruntime as ort
    import orjson
    from fastapi import FastAPI

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    app = FastAPI()

    @app.post("/infer")
    async def infer(request: Request) -> Response:
        doc = orjson.loads(await request.body())
        spec = doc["inputs"][0]
        x = np.asarray(spec["data"], dtype=np.float32).reshape(spec["shape"])
        y = session.run(None, {name: x})[0].astype(np.float64).ravel()
        out = {"name": "predict", "datatype": "FP64", "shape": [len(y), 1], "data": y}
        answer = {"model_name": "bench", "outputs": [out]}
        if "id" in doc:
            answer["id"] = doc["id"]
        return Response(
            orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY),
            media_type="application/json",
        )

    return app


def entity_app(spec_path: str, floor: str) -> Any:
    """A floor for /v1/predict: parse the keys, fetch the rows (Feast's online store, or a
    dict filled at start), stack them in the model's feature order, run ONNX Runtime."""
    import numpy as np
    import onnxruntime as ort
    import orjson
    from fastapi import FastAPI

    from driftloop.features.store import FeatureStore
    from driftloop.project import Project

    spec = json.loads(Path(spec_path).read_text())
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(spec["onnx"], options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    keys, features = spec["keys"], spec["features"]
    project = Project.load(Path(spec["project"]))
    feast = FeatureStore(project)._feast()
    service = feast.get_feature_service(FeatureStore(project).layout.feature_service)

    def lookup(entities: list[dict[str, Any]]) -> np.ndarray:
        rows = [{k: e[k] for k in keys} for e in entities]
        values = feast.get_online_features(features=service, entity_rows=rows).to_dict()
        return np.array([values[f] for f in features], dtype=np.float64).T.astype(np.float32)

    app = FastAPI()

    def answer(x: np.ndarray) -> Response:
        y = session.run(None, {name: x})[0].ravel()
        return Response(orjson.dumps({"predictions": y.tolist()}), media_type="application/json")

    if floor == "feast":

        @app.post("/v1/predict")
        def predict_feast(body: bytes = Depends(_body)) -> Response:  # a worker thread: blocks
            return answer(lookup(orjson.loads(body)["entities"]))

        return app
    known = spec["entities"]
    table = {tuple(e[k] for k in keys): x for e, x in zip(known, lookup(known), strict=True)}

    @app.post("/v1/predict")
    async def predict_dict(request: Request) -> Response:
        doc = orjson.loads(await request.body())
        return answer(np.stack([table[tuple(e[k] for k in keys)] for e in doc["entities"]]))

    return app


async def _body(request: Request) -> bytes:
    return await request.body()


def wait_http(url: str, proc: subprocess.Popen[bytes], body: bytes | None = None) -> None:
    """Wait until ``url`` answers 200 to a POST of ``body`` (a GET without one)."""
    deadline = time.monotonic() + 600  # five servers starting at once on a loaded machine
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server for {url} exited with {proc.returncode}")
        try:
            if body is None:
                r = httpx.get(url, timeout=2)
            else:
                r = httpx.post(
                    url, content=body, headers={"Content-Type": "application/json"}, timeout=2
                )
            if r.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer in time")


LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and every process under it (``mlflow models serve``
    answers from a child), from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, grown = {pid}, True
    while grown:
        more = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= more
        grown = bool(more)
    return sum(times.get(p, 0.0) for p in tree)


def run_wrk(
    url: str, body: bytes, connections: int, duration_s: int, tmp: Path, pid: int
) -> dict[str, float]:
    """One wrk run: req/s, latency, and the server's CPU per answered request (its own
    processes' user + system time: a measure the machine's other load moves far less than
    req/s, which depends on how much of the 2 cores the server got)."""
    script = tmp / "post.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body.decode())}\n"
    )
    threads = min(connections, 2)
    subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", "-d2s", "-s", str(script), url],
        capture_output=True,
        check=True,
    )  # warm-up
    cpu_before, load = cpu_seconds(pid), os.getloadavg()[0]
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration_s}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = cpu_seconds(pid) - cpu_before
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    lat = {p: float(v) * scale[u] for p, v, u in LATENCY.findall(out)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    answered = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return {
        "rps": rps,
        "cpu_us": cpu / max(answered, 1) * 1e6,
        "load": load,
        "p50_ms": lat["50"],
        "p99_ms": lat["99"],
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def post_json(url: str, body: bytes) -> Any:
    r = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=30)
    r.raise_for_status()
    return r.json()


def entity_predictions(doc: Any) -> list[float]:
    """The predictions of an entity answer, driftloop's or a floor's."""
    found = doc["predictions"]
    return [p["prediction"] if isinstance(p, dict) else p for p in found]


def build_project(tmp: Path) -> tuple[Any, Any]:
    from driftloop.app.scaffold import create_project
    from driftloop.features.store import FeatureStore
    from driftloop.pipeline.train import run_training
    from driftloop.registry import open_registry

    project = create_project(tmp / "bench", "retail", 1)
    store = FeatureStore(project)
    applied = store.apply()
    store.materialize(applied.last_day)
    registry = open_registry(project)
    run_training(project, registry, project.config.scenario.shift.date, actor="bench")
    return project, registry


Server = tuple[list[str], dict[str, str]]  # command, {workload: url}


def start_all(servers: dict[str, Server], env: dict[str, str]) -> dict[str, Any]:
    procs = {}
    for name, (cmd, _urls) in servers.items():
        procs[name] = subprocess.Popen(
            cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    return procs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds (medians)")
    parser.add_argument("--no-mlflow", action="store_true", help="skip mlflow models serve")
    parser.add_argument("--only", choices=["v2", "entity"], help="one part of the benchmark")
    parser.add_argument("--bare-app", help=argparse.SUPPRESS)
    parser.add_argument("--entity-app", help=argparse.SUPPRESS)
    parser.add_argument("--floor", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_app or args.entity_app:  # child process: serve a baseline
        import uvicorn

        app = bare_app(args.bare_app) if args.bare_app else entity_app(args.entity_app, args.floor)
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=args.port,
            log_level="warning",
            access_log=False,
            loop="uvloop",
            http="httptools",
        )
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    from driftloop.features.store import FeatureStore

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with console.status("creating, materializing and training the default retail project"):
            project, registry = build_project(tmp)
        onnx_file = str(next((project.state_dir / "mlartifacts").rglob("model.onnx")))
        model = registry.load_model("1")
        keys = list(FeatureStore(project).keys)
        entities = [dict(zip(keys, e, strict=True)) for e in FeatureStore(project).entities()]
        spec = tmp / "entity.json"
        spec.write_text(
            json.dumps(
                {
                    "onnx": onnx_file,
                    "project": str(project.root),
                    "keys": keys,
                    "features": list(model.feature_names),
                    "entities": entities[:100],
                }
            )
        )
        row = [
            [
                20.0,
                18.0,
                22.0,
                19.0,
                20.5,
                4.0,
                20.0,
                5.0,
                9.5,
                1.0,
                0.0,
                0.0,
                2.0,
                15.0,
                6.0,
                166.0,
                0.0,
            ]
        ]
        bodies = {
            "v2": json.dumps(
                {"inputs": [{"name": "input", "shape": [1, 17], "datatype": "FP32", "data": row}]}
            ).encode(),
            "split": json.dumps(
                {"dataframe_split": {"columns": list(model.feature_names), "data": row}}
            ).encode(),
            "1 entity": json.dumps({"entities": entities[:1]}).encode(),
            "100 entities": json.dumps({"entities": entities[:100]}).encode(),
        }
        # mlflow models serve starts `uvicorn` through bash: the venv's bin must be on PATH.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{project.state_dir}/mlflow.db",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "FEAST_USAGE": "False",
            "PATH": path,
        }
        servers = plan_servers(args, project, onnx_file, spec)
        workloads = [("v2", 1), ("v2", 8)] if args.only != "entity" else []
        if args.only != "v2":
            workloads += [(w, c) for w in ("1 entity", "100 entities") for c in (1, 16)]
        procs = start_all(servers, env)
        results: dict[tuple[str, str, int], list[dict[str, float]]] = {}
        try:
            for name, (_cmd, urls) in servers.items():
                with console.status(f"{name}: starting"):
                    for workload, url in urls.items():
                        wait_http(
                            url, procs[name], bodies["split" if "mlflow" in name else workload]
                        )
            if args.only != "v2":
                check_equal(servers, bodies)
            for _ in range(args.rounds):
                for workload, conns in workloads:
                    for name, (_cmd, urls) in servers.items():
                        if workload not in urls:
                            continue
                        body = bodies["split" if "mlflow" in name else workload]
                        with console.status(f"{name}: {workload}, {conns} conn(s)"):
                            found = run_wrk(
                                urls[workload], body, conns, args.duration, tmp, procs[name].pid
                            )
                        results.setdefault((workload, name, conns), []).append(found)
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                proc.wait(timeout=60)
    report(results, workloads)


def plan_servers(args: Any, project: Any, onnx_file: str, spec: Path) -> dict[str, Server]:
    ports = {n: free_port() for n in ("driftloop", "bare", "mlflow", "feast", "dict")}
    base = {n: f"http://127.0.0.1:{p}" for n, p in ports.items()}
    entity = {w: "/v1/predict" for w in ("1 entity", "100 entities")}
    servers: dict[str, Server] = {
        "driftloop": (
            [
                sys.executable,
                "-m",
                "driftloop",
                "serve",
                "--project",
                str(project.root),
                "--port",
                str(ports["driftloop"]),
                "--log-level",
                "warning",
            ],
            {
                "v2": f"{base['driftloop']}/v2/models/bench/infer",
                **{w: base["driftloop"] + u for w, u in entity.items()},
            },
        ),
        "bare V2 (FastAPI+ONNX)": (
            [sys.executable, __file__, "--bare-app", onnx_file, "--port", str(ports["bare"])],
            {"v2": f"{base['bare']}/infer"},
        ),
        "floor: Feast row": (
            [
                sys.executable,
                __file__,
                "--entity-app",
                str(spec),
                "--floor",
                "feast",
                "--port",
                str(ports["feast"]),
            ],
            {w: base["feast"] + u for w, u in entity.items()},
        ),
        "floor: dict row": (
            [
                sys.executable,
                __file__,
                "--entity-app",
                str(spec),
                "--floor",
                "dict",
                "--port",
                str(ports["dict"]),
            ],
            {w: base["dict"] + u for w, u in entity.items()},
        ),
    }
    if not args.no_mlflow and args.only != "entity":
        servers["mlflow serve"] = (
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                "models:/bench/1",
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "-p",
                str(ports["mlflow"]),
            ],
            {"v2": f"{base['mlflow']}/invocations"},
        )
    if args.only == "v2":
        servers = {n: s for n, s in servers.items() if "v2" in s[1]}
    if args.only == "entity":
        servers = {n: s for n, s in servers.items() if "1 entity" in s[1]}
    return servers


def check_equal(servers: dict[str, Server], bodies: dict[str, bytes]) -> None:
    """Every entity server answers the same predictions (float32 models: 1e-6 relative)."""
    for workload in ("1 entity", "100 entities"):
        answers = {
            name: entity_predictions(post_json(urls[workload], bodies[workload]))
            for name, (_cmd, urls) in servers.items()
            if workload in urls
        }
        first = next(iter(answers.values()))
        for name, preds in answers.items():
            diff = max(abs(a - b) / max(abs(a), 1.0) for a, b in zip(first, preds, strict=True))
            if len(preds) != len(first) or diff > 1e-6:
                raise SystemExit(f"{name} answers {workload} differently: max rel diff {diff}")
        console.print(f"{workload}: {len(answers)} servers, {len(first)} predictions each, equal")


def report(
    results: dict[tuple[str, str, int], list[dict[str, float]]], workloads: list[tuple[str, int]]
) -> None:
    import statistics

    med = {
        k: {m: statistics.median(r[m] for r in runs) for m in runs[0]}
        for k, runs in results.items()
    }
    table = Table(title="wrk, 127.0.0.1, 2 shared cores (medians of the rounds)")
    columns = ("request", "conns", "server", "req/s", "p50 ms", "p99 ms", "CPU us/req", "load")
    for column in (*columns, "non-2xx"):
        table.add_column(column, justify="left" if column in ("request", "server") else "right")
    for (workload, name, conns), r in med.items():
        table.add_row(
            workload,
            str(conns),
            name,
            f"{r['rps']:,.0f}",
            f"{r['p50_ms']:.3f}",
            f"{r['p99_ms']:.3f}",
            f"{r['cpu_us']:,.0f}",
            f"{r['load']:.1f}",
            f"{r['non_2xx']:.0f}",
        )
    console.print(table)
    checks = []

    def ratio(
        label: str,
        workload: str,
        conns: int,
        ours: str,
        base: str,
        metric: str,
        target: float,
        most: bool,
    ) -> None:
        a, b = med.get((workload, ours, conns)), med.get((workload, base, conns))
        if a is None or b is None:
            return
        value = a[metric] / b[metric]
        ok = value <= target if most else value >= target
        sign = "<=" if most else ">="
        # each round's ratio (the two runs closest in time), and the CPU per request's
        mine, theirs = results[(workload, ours, conns)], results[(workload, base, conns)]
        each = ", ".join(f"{x[metric] / y[metric]:.2f}" for x, y in zip(mine, theirs, strict=True))
        cpu = a["cpu_us"] / b["cpu_us"]
        checks.append(
            f"{label}: {value:.2f}x (target {sign} {target}x) {'met' if ok else 'NOT met'}; "
            f"rounds {each}; CPU/request {cpu:.2f}x"
        )

    dl, floor, feast = (
        "driftloop",
        "floor: dict row",
        "floor: Feast row",
    )
    bare, mlf = "bare V2 (FastAPI+ONNX)", "mlflow serve"
    ratio("V2 1 conn p50 / bare", "v2", 1, dl, bare, "p50_ms", 1.2, True)
    ratio("V2 8 conns req/s / bare", "v2", 8, dl, bare, "rps", 0.8, False)
    ratio("V2 1 conn req/s / mlflow serve", "v2", 1, dl, mlf, "rps", 10.0, False)
    for conns in (1, 16):
        ratio(
            f"1 entity {conns} conn p50 / dict floor",
            "1 entity",
            conns,
            dl,
            floor,
            "p50_ms",
            2.0,
            True,
        )
        ratio(
            f"1 entity {conns} conn req/s / dict floor",
            "1 entity",
            conns,
            dl,
            floor,
            "rps",
            0.5,
            False,
        )
        ratio(
            f"1 entity {conns} conn req/s / Feast floor",
            "1 entity",
            conns,
            dl,
            feast,
            "rps",
            2.0,
            False,
        )
        ratio(
            f"100 entities {conns} conn req/s / dict floor",
            "100 entities",
            conns,
            dl,
            floor,
            "rps",
            0.5,
            False,
        )
    for line in checks:
        console.print(line)


if __name__ == "__main__":
    main()
