"""A real Kubernetes API server for the tests: etcd and kube-apiserver on 127.0.0.1.

Both come from Debian's packages, built or installed by ``.ci/run``: etcd from
``etcd-server``, kube-apiserver built from the source package ``kubernetes`` (the one that
ships ``kubectl``, v1.20) with Debian's Go into /opt/driftloop-kube. ``KUBE_APISERVER``
names the binary (default: ``kube-apiserver`` on PATH, else the one .ci/run built); the
tests that need it skip, saying why, when either is absent.

Authentication is by static tokens: an administrator (``system:masters``) that applies
the RBAC ``driftloop deploy k8s`` renders, and the loop controller's ServiceAccount
identity, which holds only what those manifests grant it.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ADMIN_TOKEN = "driftloop-test-admin-token-0123456789"
CONTROLLER_TOKEN = "driftloop-test-controller-token-0123456789"
STRANGER_TOKEN = "driftloop-test-stranger-token-0123456789"


BUILT = "/opt/driftloop-kube/kube-apiserver"  # where .ci/run builds it


def binaries() -> tuple[str | None, str | None]:
    """(kube-apiserver, etcd), each None when not installed."""
    named = os.environ.get("KUBE_APISERVER")
    apiserver = shutil.which(named) if named else shutil.which("kube-apiserver")
    if apiserver is None and not named:
        apiserver = shutil.which(BUILT)
    return apiserver, shutil.which("etcd")


def missing_reason() -> str | None:
    apiserver, etcd = binaries()
    if apiserver is None:
        return (
            "kube-apiserver is not installed (.ci/run builds it from Debian's kubernetes "
            "source package; KUBE_APISERVER names another binary)"
        )
    if etcd is None:
        return "etcd is not installed (Debian's etcd-server; .ci/run installs it)"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class KubeApi:
    """A running API server: its URL, CA file and folder for kubeconfigs."""

    url: str
    ca: Path
    root: Path

    def client(self, token: str) -> Any:
        """An ``ApiClient`` that authenticates with ``token`` (the one the controller
        uses, which writes times as ``MicroTime``)."""
        from kubernetes import client

        from driftloop.loop.kube_lease import micro_time_client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.ssl_ca_cert = str(self.ca)
        cfg.api_key = {"authorization": f"Bearer {token}"}
        return micro_time_client(cfg)

    def kubeconfig(self, token: str, name: str) -> Path:
        """A kubeconfig file for ``token`` (what a process outside the cluster reads)."""
        import yaml

        path = self.root / f"{name}.kubeconfig"
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "t",
                    "cluster": {"server": self.url, "certificate-authority": str(self.ca)},
                }
            ],
            "users": [{"name": name, "user": {"token": token}}],
            "contexts": [{"name": "t", "context": {"cluster": "t", "user": name}}],
            "current-context": "t",
        }
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        return path


def _started(args: list[str], log: Path, stack: ExitStack) -> subprocess.Popen[bytes]:
    out = stack.enter_context(log.open("wb"))
    proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

    def stop() -> None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)

    stack.callback(stop)
    return proc


def _wait_ready(url: str, ca: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``/readyz`` as the administrator until it answers 200 (the server's start)."""
    deadline = time.monotonic() + 300.0
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"kube-apiserver exited {proc.returncode}: {log.read_text()[-3000:]}"
            )
        if ca.exists():
            try:
                verify = ssl.create_default_context(cafile=str(ca))
                if httpx.get(f"{url}/readyz", headers=headers, verify=verify).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    raise RuntimeError(f"kube-apiserver not ready in 300 s: {log.read_text()[-3000:]}")


@contextmanager
def kube_apiserver(root: Path, controller_user: str) -> Iterator[KubeApi]:
    """etcd and kube-apiserver in ``root``; ``CONTROLLER_TOKEN`` authenticates as
    ``controller_user`` (``system:serviceaccount:NS:NAME``), ``STRANGER_TOKEN`` as a
    ServiceAccount granted nothing."""
    apiserver, etcd = binaries()
    assert apiserver is not None and etcd is not None, missing_reason()
    root.mkdir(parents=True, exist_ok=True)
    key = root / "sa.key"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True)
    sa_groups = '"system:serviceaccounts,system:authenticated"'
    (root / "tokens.csv").write_text(
        f"{ADMIN_TOKEN},admin,1,system:masters\n"
        f"{CONTROLLER_TOKEN},{controller_user},2,{sa_groups}\n"
        f"{STRANGER_TOKEN},system:serviceaccount:default:stranger,3,{sa_groups}\n",
        encoding="utf-8",
    )
    etcd_port, peer_port, port = _free_port(), _free_port(), _free_port()
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    with ExitStack() as stack:
        etcd_args = [etcd, "--name", "t", "--data-dir", str(root / "etcd")]
        etcd_args += ["--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url]
        etcd_args += ["--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url]
        etcd_args += ["--initial-cluster", f"t={peer_url}"]
        _started(etcd_args, root / "etcd.log", stack)
        certs = root / "certs"
        args = [
            apiserver,
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            "--insecure-port=0",
            f"--cert-dir={certs}",
            f"--token-auth-file={root / 'tokens.csv'}",
            "--authorization-mode=RBAC",
            f"--service-account-key-file={key}",
            f"--service-account-signing-key-file={key}",
            "--service-account-issuer=https://kubernetes.default.svc",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--disable-admission-plugins=ServiceAccount",
            "--enable-priority-and-fairness=false",
        ]
        proc = _started(args, root / "apiserver.log", stack)
        url = f"https://127.0.0.1:{port}"
        ca = certs / "apiserver.crt"
        _wait_ready(url, ca, proc, root / "apiserver.log")
        yield KubeApi(url, ca, root)
