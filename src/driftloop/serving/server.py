"""Running the server: ``driftloop serve`` in the foreground, or a background thread."""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

from driftloop.clock import Clock
from driftloop.project import Project
from driftloop.registry.base import ModelRegistry

__all__ = ["BackgroundServer", "build_context", "run_server"]


def build_context(
    project: Project,
    registry: ModelRegistry | None = None,
    clock: Clock | None = None,
    admin_token: str | None = None,
) -> Any:
    """The server's context for ``project`` (registry from its config by default)."""
    from driftloop.registry import open_registry
    from driftloop.serving.context import ServerContext

    return ServerContext(project, registry or open_registry(project, clock), clock, admin_token)


def _config(app: Any, host: str, port: int, log_level: str) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        timeout_graceful_shutdown=30,
    )


def run_server(ctx: Any, host: str, port: int, log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM; in-flight requests finish and the logs are flushed.

    uvicorn re-raises the stop signal after a graceful shutdown, so the process would end
    "killed by SIGTERM"; a graceful stop is a success here, and the command exits 0.
    """
    import uvicorn

    from driftloop.serving.app import create_app

    class GracefulServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            self._captured_signals.clear()

    GracefulServer(_config(create_app(ctx), host, port, log_level)).run()


class BackgroundServer:
    """A real uvicorn server on 127.0.0.1 (a free port by default) in a thread."""

    def __init__(self, ctx: Any, port: int = 0, log_level: str = "warning") -> None:
        import uvicorn

        from driftloop.serving.app import create_app

        self.ctx = ctx
        self.server = uvicorn.Server(_config(create_app(ctx), "127.0.0.1", port, log_level))
        self.thread = threading.Thread(target=self.server.run, name="driftloop-server", daemon=True)

    @property
    def url(self) -> str:
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self, timeout_s: float = 60.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
