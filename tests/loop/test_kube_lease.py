"""The loop's lease as a Kubernetes Lease, against a real API server on 127.0.0.1.

etcd and kube-apiserver run here (tests/loop/kube_apiserver.py); the controller's
identity holds only the RBAC that ``driftloop deploy k8s`` renders, applied by an
administrator. Time is a simulated clock: the API server stores the Lease and enforces
``resourceVersion``; expiry is judged by the controllers, as client-go's are. With real
processes: two ``driftloop loop run`` on one project, the first killed with SIGKILL, the
second takes the Lease within ``lease_s`` + one poll + 1 s of the kill.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import copy_with_registry
from tests.loop.kube_apiserver import (
    ADMIN_TOKEN,
    CONTROLLER_TOKEN,
    STRANGER_TOKEN,
    KubeApi,
    kube_apiserver,
    missing_reason,
)
from tests.loop.test_lease import LEASE_S, TOKEN, Lines, loop_run

from driftloop.clock import SimulatedClock
from driftloop.config import ProjectConfig, dump_config
from driftloop.deploy.k8s import DeployTarget, ServedVersions, render_manifests
from driftloop.errors import BackendError
from driftloop.loop.kube_lease import KubeLease, lease_name
from driftloop.loop.store import LoopStore
from driftloop.project import Project
from driftloop.serving.server import BackgroundServer, build_context

pytestmark = pytest.mark.skipif(missing_reason() is not None, reason=str(missing_reason()))

NAMESPACE = "default"
CONFIG = ProjectConfig.model_validate({"project": "retail_shop"})
NAME = lease_name(CONFIG)  # retail-shop-loop
START = datetime(2026, 1, 1, tzinfo=UTC)


def _apply_rbac(api: KubeApi, config: ProjectConfig) -> None:
    """What an operator does with `driftloop deploy k8s`'s output: apply the controller's
    ServiceAccount, Role and RoleBinding as an administrator."""
    from kubernetes import client

    target = DeployTarget(config, "m", ServedVersions("1"), dump_config(config))
    manifests: Any = render_manifests(target)
    admin = api.client(ADMIN_TOKEN)
    core, rbac = client.CoreV1Api(admin), client.RbacAuthorizationV1Api(admin)
    core.create_namespaced_service_account(NAMESPACE, manifests["ServiceAccount"][0])
    rbac.create_namespaced_role(NAMESPACE, manifests["Role"][0])
    rbac.create_namespaced_role_binding(NAMESPACE, manifests["RoleBinding"][0])


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApi]:
    root = tmp_path_factory.mktemp("kube")
    with kube_apiserver(root, f"system:serviceaccount:{NAMESPACE}:{NAME}") as api:
        _apply_rbac(api, CONFIG)
        yield api


def _coordination(api: KubeApi, token: str) -> Any:
    from kubernetes import client

    return client.CoordinationV1Api(api.client(token))


def _delete(api: KubeApi) -> None:
    from kubernetes.client.exceptions import ApiException

    try:
        _coordination(api, ADMIN_TOKEN).delete_namespaced_lease(NAME, NAMESPACE)
    except ApiException as exc:
        assert exc.status == 404


def _lease(api: KubeApi, holder: str, clock: SimulatedClock) -> KubeLease:
    return KubeLease(_coordination(api, CONTROLLER_TOKEN), NAMESPACE, NAME, clock, 30.0, holder)


def test_the_lease_is_refused_until_it_expires_then_taken_over_with_its_record(
    kube: KubeApi,
) -> None:
    _delete(kube)
    clock_a, clock_b = SimulatedClock(START), SimulatedClock(START + timedelta(hours=5))
    first, second = _lease(kube, "a", clock_a), _lease(kube, "b", clock_b)
    took = first.acquire()  # creates the Lease: the Role grants create
    assert (took.holder, took.taken_from) == ("a", None)
    stored = _coordination(kube, ADMIN_TOKEN).read_namespaced_lease(NAME, NAMESPACE).spec
    assert (stored.holder_identity, stored.lease_duration_seconds) == ("a", 30)
    assert stored.lease_transitions == 0 and stored.acquire_time == START
    # b's clock is 5 h ahead: expiry is judged from when b saw the Lease change, not from
    # a's renewTime, so the skew does not hand b the lease
    assert second.acquire().holder == "a"
    for _ in range(3):
        clock_a.advance(timedelta(seconds=20))
        clock_b.advance(timedelta(seconds=20))
        assert first.renew()
        assert second.acquire().holder == "a"  # b sees each renewal
    clock_b.advance(timedelta(seconds=29))
    assert second.acquire().holder == "a"
    clock_b.advance(timedelta(seconds=1))  # 30 s after b last saw a renewal
    taken = second.acquire()
    assert (taken.holder, taken.taken_from) == ("b", "a")
    stored = _coordination(kube, ADMIN_TOKEN).read_namespaced_lease(NAME, NAMESPACE).spec
    assert (stored.holder_identity, stored.lease_transitions) == ("b", 1)
    assert stored.acquire_time == stored.renew_time == clock_b.now()
    assert not first.renew()  # the old holder learns it lost the lease


def test_a_graceful_release_frees_the_lease_at_once(kube: KubeApi) -> None:
    _delete(kube)
    clock = SimulatedClock(START)
    first, second = _lease(kube, "a", clock), _lease(kube, "b", clock)
    first.acquire()
    assert second.acquire().holder == "a"
    first.release()
    assert second.current() is None
    got = second.wait(until=clock.now())
    assert got is not None and got.holder == "b" and got.taken_from is None
    assert clock.now() == START  # no waiting
    stored = _coordination(kube, ADMIN_TOKEN).read_namespaced_lease(NAME, NAMESPACE).spec
    assert stored.lease_transitions == 1


class _Racing:
    """The real API, but another controller writes between this one's read and write."""

    def __init__(self, api: Any, other: KubeLease) -> None:
        self.api, self.other, self.raced = api, other, False

    def read_namespaced_lease(self, name: str, namespace: str) -> Any:
        return self.api.read_namespaced_lease(name, namespace)

    def create_namespaced_lease(self, namespace: str, body: Any) -> Any:
        return self.api.create_namespaced_lease(namespace, body)

    def replace_namespaced_lease(self, name: str, namespace: str, body: Any) -> Any:
        if not self.raced:
            self.raced = True
            assert self.other.acquire().holder == self.other.holder
        return self.api.replace_namespaced_lease(name, namespace, body)


def test_of_two_writes_from_one_read_the_api_server_takes_one(kube: KubeApi) -> None:
    _delete(kube)
    clock = SimulatedClock(START)
    _lease(kube, "a", clock).acquire()
    _lease(kube, "a", clock).release()  # free: both b and c may take it
    c = _lease(kube, "c", clock)
    racing = _Racing(_coordination(kube, CONTROLLER_TOKEN), c)
    b = KubeLease(racing, NAMESPACE, NAME, clock, 30.0, "b")
    got = b.acquire()  # b read the free Lease; c took it; b's replace got 409 and read again
    assert got.holder == "c" and racing.raced
    assert not b.renew() and c.renew()


def test_without_the_rendered_rbac_the_error_names_the_fix(kube: KubeApi) -> None:
    stranger = KubeLease(
        _coordination(kube, STRANGER_TOKEN), NAMESPACE, NAME, SimulatedClock(START), 30.0, "s"
    )
    with pytest.raises(BackendError, match=r"403 Forbidden.*driftloop deploy k8s"):
        stranger.acquire()
    other = KubeLease(
        _coordination(kube, CONTROLLER_TOKEN),
        NAMESPACE,
        "another-loop",
        SimulatedClock(START),
        30.0,
    )
    with pytest.raises(BackendError, match="may not read Lease default/another-loop"):
        other.acquire()  # get and update only on its own Lease


def test_a_second_controller_process_takes_the_kubernetes_lease_from_a_killed_one(
    kube: KubeApi, trained_project: Any, tmp_path: Path
) -> None:
    _delete(kube)
    project: Project = copy_with_registry(trained_project, tmp_path / "shop")
    env = {
        "DRIFTLOOP__LOOP__LEASE_BACKEND": "kubernetes",
        "DRIFTLOOP__DEPLOY__NAME": "retail-shop",  # the Lease and Role of the fixture
        "KUBECONFIG": str(kube.kubeconfig(CONTROLLER_TOKEN, "controller")),
    }
    store = LoopStore(project.state_dir / "state.db")
    admin = _coordination(kube, ADMIN_TOKEN)
    with BackgroundServer(build_context(project, admin_token=TOKEN)) as server:
        first = loop_run(project, server.url, env)
        second = None
        outputs = [out_first := Lines(first.stdout)]  # type: ignore[arg-type]
        try:
            out_first.until(" none: ")  # its first check is done: it holds the lease
            assert admin.read_namespaced_lease(NAME, NAMESPACE).spec.holder_identity.endswith(
                f":{first.pid}"
            )
            second = loop_run(project, server.url, env)
            outputs.append(out_second := Lines(second.stdout))  # type: ignore[arg-type]
            waiting = out_second.until("another controller is active")
            assert f":{first.pid} holds the lease" in waiting

            first.send_signal(signal.SIGKILL)
            killed_at = datetime.now(UTC)
            assert first.wait(timeout=30) == -signal.SIGKILL
            out_second.until(" none: ")  # the second took over and checked
            taken = store.events(project.model_name, kinds=("lease_acquired",))
            assert taken[1].evidence["taken_from"] == taken[0].evidence["holder"]
            assert taken[1].evidence["holder"].endswith(f":{second.pid}")
            late_s = (taken[1].at - killed_at).total_seconds()
            assert 0.0 < late_s <= LEASE_S + LEASE_S / 10 + 1.0, late_s
            spec = admin.read_namespaced_lease(NAME, NAMESPACE).spec
            assert spec.lease_transitions == 1 and spec.lease_duration_seconds == LEASE_S

            second.send_signal(signal.SIGTERM)  # a graceful stop releases the Lease
            assert second.wait(timeout=60) == 0, out_second.seen
        finally:
            for proc in (first, second):
                if proc is not None and proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=30)
            for output in outputs:
                output.close()
    assert admin.read_namespaced_lease(NAME, NAMESPACE).spec.holder_identity is None
