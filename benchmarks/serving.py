"""Serving speed: driftloop's V2 endpoint against a bare FastAPI endpoint on the same ONNX
model, and against `mlflow models serve` on the same registered version, in one run.

    apt-get install -y wrk          # the load generator (Debian package)
    .venv/bin/python benchmarks/serving.py [--duration 10]

Every server is its own process on 127.0.0.1; wrk sends one fixed single-row request
per call at 1 and 8 connections. driftloop runs with routing, the prediction log and
Prometheus metrics on. Targets (issue 4): p50 <= 1.2x bare, req/s >= 10x mlflow serve.
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
from fastapi import Request, Response  # module level: FastAPI resolves handler annotations here
from rich.console import Console
from rich.table import Table

console = Console()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bare_app(model_path: str) -> Any:
    """The baseline: FastAPI parsing the same V2 JSON and calling ONNX Runtime, nothing else."""
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
        y = session.run(None, {name: x})[0].ravel()
        return Response(orjson.dumps({"outputs": [{"name": "predict", "data": y.tolist()}]}),
                        media_type="application/json")  # fmt: skip

    return app


def wait_http(url: str, proc: subprocess.Popen[bytes], body: bytes | None = None) -> None:
    """Wait until ``url`` answers 200 to a POST of ``body`` (a GET without one)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server for {url} exited with {proc.returncode}")
        try:
            if body is None:
                r = httpx.get(url, timeout=2)
            else:
                r = httpx.post(url, content=body, headers={"Content-Type": "application/json"},
                               timeout=2)  # fmt: skip
            if r.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not answer in time")


LATENCY = re.compile(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)


def run_wrk(
    url: str, body: bytes, connections: int, duration_s: int, tmp: Path
) -> dict[str, float]:
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
    )  # fmt: skip  (warm-up)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency", "-s",
         str(script), url], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    lat = {p: float(v) * scale[u] for p, v, u in LATENCY.findall(out)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": lat["50"], "p99_ms": lat["99"],
            "non_2xx": float(errors.group(1)) if errors else 0.0}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--bare-app", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_app:  # child process: serve the baseline
        import uvicorn

        uvicorn.run(bare_app(args.bare_app), host="127.0.0.1", port=args.port, log_level="warning",
                    access_log=False, loop="uvloop", http="httptools")  # fmt: skip
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")

    from driftloop.features.store import FeatureStore
    from driftloop.pipeline.train import run_training
    from driftloop.registry import open_registry
    from driftloop.scaffold import create_project

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with console.status("creating and training the default retail project"):
            project = create_project(tmp / "bench", "retail", 1)
            FeatureStore(project).apply()
            registry = open_registry(project)
            run_training(project, registry, project.config.scenario.shift.date, actor="bench")
        onnx_files = list((project.state_dir / "mlartifacts").rglob("model.onnx"))
        model = registry.load_model("1")
        row = [[20.0, 18.0, 22.0, 19.0, 20.5, 4.0, 20.0, 5.0, 9.5, 1.0, 0.0, 0.0, 2.0, 15.0,
                6.0, 166.0, 0.0]]  # fmt: skip
        v2 = json.dumps({"inputs": [{"name": "input", "shape": [1, 17], "datatype": "FP32",
                                     "data": row}]}).encode()  # fmt: skip
        split = json.dumps({"dataframe_split": {"columns": list(model.feature_names),
                                                "data": row}}).encode()  # fmt: skip
        # mlflow models serve starts `uvicorn` through bash: the venv's bin must be on PATH.
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{project.state_dir}/mlflow.db",
               "MLFLOW_DISABLE_TELEMETRY": "true", "PATH": path}  # fmt: skip
        ports = {name: free_port() for name in ("driftloop", "bare", "mlflow")}
        servers = {
            "driftloop": ([sys.executable, "-m", "driftloop", "serve", "--project",
                           str(project.root), "--port", str(ports["driftloop"]),
                           "--log-level", "warning"],
                          f"http://127.0.0.1:{ports['driftloop']}/v2/models/bench/infer", v2),
            "bare FastAPI + ONNX Runtime": ([sys.executable, __file__, "--bare-app",
                                            str(onnx_files[0]), "--port", str(ports["bare"])],
                                           f"http://127.0.0.1:{ports['bare']}/infer", v2),
            "mlflow models serve": ([sys.executable, "-m", "mlflow", "models", "serve", "-m",
                                     "models:/bench/1", "--env-manager", "local", "--host",
                                     "127.0.0.1", "-p", str(ports["mlflow"])],
                                    f"http://127.0.0.1:{ports['mlflow']}/invocations", split),
        }  # fmt: skip
        results: dict[str, dict[int, dict[str, float]]] = {}
        for name, (cmd, url, body) in servers.items():
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)  # fmt: skip
            try:
                with console.status(f"{name}: starting"):
                    wait_http(url, proc, body)
                results[name] = {}
                for conns in (1, 8):
                    with console.status(f"{name}: {conns} connection(s), {args.duration}s"):
                        results[name][conns] = run_wrk(url, body, conns, args.duration, tmp)
            finally:
                proc.terminate()
                proc.wait(timeout=60)
    table = Table(title="single-row inference, wrk, 127.0.0.1, 2 cores")
    for column in ("server", "conns", "req/s", "p50 ms", "p99 ms", "non-2xx"):
        table.add_column(column, justify="left" if column == "server" else "right")
    for name, by_conn in results.items():
        for conns, r in by_conn.items():
            table.add_row(name, str(conns), f"{r['rps']:,.0f}", f"{r['p50_ms']:.3f}",
                          f"{r['p99_ms']:.3f}", f"{r['non_2xx']:.0f}")  # fmt: skip
    console.print(table)
    ours, bare, mlf = (results[n][1] for n in servers)
    console.print(
        f"1 connection: driftloop p50 / bare p50 = {ours['p50_ms'] / bare['p50_ms']:.2f}x "
        f"(target <= 1.2x); driftloop req/s / mlflow serve req/s = "
        f"{ours['rps'] / mlf['rps']:.1f}x (target >= 10x)"
    )


if __name__ == "__main__":
    main()
