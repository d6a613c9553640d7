"""One active controller per project: a lease with an expiry in the state database.

A controller takes the lease of its model before it checks anything and renews it every
third of ``loop.lease_s`` (from a thread, so a long retrain keeps it too); a second
controller finds it held, says by whom and until when, and asks again every tenth of
``lease_s``. A holder that stops renewing (killed, its node lost, frozen) loses the lease
when it expires: the waiting one takes it then, within ``lease_s`` of the holder's last
renewal plus one poll, and resumes from the event log. A holder that finds the lease
taken (it stalled past the expiry) stops acting and waits like any other. Time comes
from the controller's clock; controllers on different hosts must keep their clocks
within a small part of ``lease_s`` (NTP does).
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from driftloop.clock import Clock
from driftloop.config import ProjectConfig
from driftloop.storage.statedb import connect, immediate

__all__ = [
    "ControllerLease",
    "LeaseHolder",
    "LoopLease",
    "RenewingLease",
    "default_holder",
    "open_lease",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS loop_leases (
    model TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    acquired_at TEXT NOT NULL,
    renewed_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
"""


def default_holder() -> str:
    """This process: host (a pod's name on Kubernetes) and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class LeaseHolder:
    """Who holds a model's lease, since when and until when."""

    holder: str
    acquired_at: datetime
    expires_at: datetime
    taken_from: str | None = None  # acquire: the holder whose lease had expired


class ControllerLease(Protocol):
    """What the controller needs of a lease, wherever it is kept: the state database
    (:class:`LoopLease`) or a Kubernetes ``Lease`` (``driftloop.loop.kube_lease``)."""

    holder: str
    lease_s: float

    @property
    def renew_every_s(self) -> float: ...

    def current(self) -> LeaseHolder | None: ...

    def acquire(self) -> LeaseHolder: ...

    def renew(self) -> bool: ...

    def kept(self) -> AbstractContextManager[None]: ...

    def release(self) -> None: ...

    def wait(
        self,
        until: datetime | None = None,
        on_wait: Callable[[LeaseHolder], None] | None = None,
    ) -> LeaseHolder | None: ...


class RenewingLease:
    """Renewing, keeping and waiting, on a backend's ``acquire`` (shared by every backend)."""

    holder: str
    lease_s: float
    clock: Clock

    def __init__(self, clock: Clock, lease_s: float, holder: str | None) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be > 0, got {lease_s}")
        self.clock, self.lease_s = clock, lease_s
        self.holder = holder or default_holder()

    @property
    def renew_every_s(self) -> float:
        return self.lease_s / 3.0

    @property
    def poll_every_s(self) -> float:
        return self.lease_s / 10.0

    def acquire(self) -> LeaseHolder:
        raise NotImplementedError

    def transient(self) -> tuple[type[Exception], ...]:
        """The backend's errors that a renewal from the thread of :meth:`kept` rides out
        (the store was busy or unreachable: the next beat renews)."""
        return ()

    def renew(self) -> bool:
        """Keep the lease; False if another controller holds it now."""
        return self.acquire().holder == self.holder

    @contextmanager
    def kept(self) -> Iterator[None]:
        """Renew the lease from a thread every third of ``lease_s`` (real time) while the
        block runs, so that a turn longer than the lease (a long retrain) keeps it too."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.renew_every_s):
                try:
                    self.renew()
                except self.transient():
                    continue

        thread = threading.Thread(target=beat, name="loop-lease", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=60)

    def wait(
        self,
        until: datetime | None = None,
        on_wait: Callable[[LeaseHolder], None] | None = None,
    ) -> LeaseHolder | None:
        """Block until this controller holds the lease (None if ``until`` came first);
        ``on_wait`` hears of each other holder once."""
        told: str | None = None
        while True:
            got = self.acquire()
            if got.holder == self.holder:
                return got
            if on_wait is not None and got.holder != told:
                on_wait(got)
                told = got.holder
            now = self.clock.now()
            if until is not None and now >= until:
                return None
            pause = min(self.poll_every_s, (got.expires_at - now).total_seconds())
            if until is not None:
                pause = min(pause, (until - now).total_seconds())
            self.clock.sleep(max(pause, 0.0) or self.poll_every_s / 10.0)


class LoopLease(RenewingLease):
    """The lease of ``model``'s loop in ``state.db``, held by ``holder``."""

    def transient(self) -> tuple[type[Exception], ...]:
        return (sqlite3.Error,)

    def __init__(
        self, path: Path, model: str, clock: Clock, lease_s: float, holder: str | None = None
    ) -> None:
        super().__init__(clock, lease_s, holder)
        self.path, self.model = path, model
        path.parent.mkdir(parents=True, exist_ok=True)
        with closing(connect(path)) as db:
            db.executescript(_SCHEMA)

    def current(self) -> LeaseHolder | None:
        """The lease as stored (possibly expired), None if never taken or released."""
        with closing(connect(self.path)) as db:
            row = db.execute(
                "SELECT holder, acquired_at, expires_at FROM loop_leases WHERE model = ?",
                (self.model,),
            ).fetchone()
        if row is None:
            return None
        return LeaseHolder(row[0], datetime.fromisoformat(row[1]), datetime.fromisoformat(row[2]))

    def acquire(self) -> LeaseHolder:
        """Take or renew the lease if free, expired or ours; the holder either way (ours
        when ``holder`` equals this one's)."""
        now = self.clock.now()
        expires = now + timedelta(seconds=self.lease_s)
        with immediate(self.path) as db:
            row = db.execute(
                "SELECT holder, acquired_at, expires_at FROM loop_leases WHERE model = ?",
                (self.model,),
            ).fetchone()
            if row is not None and row[0] != self.holder:
                until = datetime.fromisoformat(row[2])
                if until > now:
                    return LeaseHolder(row[0], datetime.fromisoformat(row[1]), until)
            ours = row is not None and row[0] == self.holder
            acquired = datetime.fromisoformat(row[1]) if ours else now
            db.execute(
                "INSERT INTO loop_leases (model, holder, acquired_at, renewed_at, expires_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (model) DO UPDATE SET holder = ?, "
                "acquired_at = ?, renewed_at = ?, expires_at = ?",
                (
                    self.model,
                    self.holder,
                    acquired.isoformat(),
                    now.isoformat(),
                    expires.isoformat(),
                    self.holder,
                    acquired.isoformat(),
                    now.isoformat(),
                    expires.isoformat(),
                ),
            )
        taken_from = row[0] if row is not None and not ours else None
        return LeaseHolder(self.holder, acquired, expires, taken_from)

    def release(self) -> None:
        """Give the lease up (a graceful stop): the next controller need not wait."""
        try:
            with immediate(self.path) as db:
                db.execute(
                    "DELETE FROM loop_leases WHERE model = ? AND holder = ?",
                    (self.model, self.holder),
                )
        except sqlite3.Error:
            pass  # it expires on its own


def open_lease(
    config: ProjectConfig, state_path: Path, model: str, clock: Clock
) -> ControllerLease:
    """``loop.lease_backend``: the lease in ``state_path`` (state), or the Kubernetes Lease
    that `driftloop deploy k8s` renders for this project (kubernetes)."""
    loop = config.loop
    if loop.lease_backend == "kubernetes":
        from driftloop.loop.kube_lease import KubeLease, coordination_api, lease_name

        api = coordination_api(loop.kube_context)
        return KubeLease(api, config.deploy.namespace, lease_name(config), clock, loop.lease_s)
    return LoopLease(state_path, model, clock, loop.lease_s)
