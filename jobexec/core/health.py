"""One small HTTP server per process: /metrics, /healthz (alive) and /readyz (dependencies up).

Liveness means the main loop still turns; readiness means Kafka, Redis or the database (each
process names what it needs) answered at the last look.

The server is Tornado's (already installed with Flower): one event-loop thread holds every
connection, a connection that has not sent its request within `HEADER_TIMEOUT_S` is closed,
at most `MAX_CONNECTIONS` are open at once, and the handlers run on a pool of
`HANDLER_THREADS`. A client that opens connections and never finishes a request therefore
costs a socket for a few seconds, never a thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.iostream import IOStream
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from jobexec.core.config_error import ConfigError

log = logging.getLogger("jobexec.health")

Readiness = Callable[[], dict[str, bool]]

HEADER_TIMEOUT_S = 10.0  # a request's headers must arrive within this, or the socket closes
MAX_CONNECTIONS = 512  # beyond this a new connection is closed at once: file descriptors stay
HANDLER_THREADS = 2  # readiness checks may block; the event loop never does


class Health:
    """Liveness by heartbeat from the main loop; readiness from a callable of named checks."""

    def __init__(self, stale_after: float = 60.0) -> None:
        self.stale_after = stale_after
        self._beat = time.monotonic()
        self.readiness: Readiness = dict

    def beat(self) -> None:
        self._beat = time.monotonic()

    def alive(self) -> bool:
        return time.monotonic() - self._beat < self.stale_after


def _registry() -> CollectorRegistry:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


class HealthServer:
    """The running server: `server_port`, and `shutdown()` to stop it and close its sockets."""

    def __init__(self, sockets: list[socket.socket], health: Health) -> None:
        self.server_port: int = sockets[0].getsockname()[1]
        self._sockets = sockets
        self._health = health
        self._pool = ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="health-handler")
        self._loop: IOLoop | None = None
        self._server: _BoundedServer | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._started.wait(10)

    def _run(self) -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        self._loop = IOLoop.current()
        app = Application(
            [
                (r"/metrics", _Metrics, {"pool": self._pool}),
                (r"/healthz", _Alive, {"health": self._health}),
                (r"/readyz", _Ready, {"health": self._health, "pool": self._pool}),
            ],
            default_handler_class=_NotFound,
            log_function=lambda _handler: None,  # probes are not news
        )
        self._server = _BoundedServer(
            app,
            idle_connection_timeout=HEADER_TIMEOUT_S,
            body_timeout=HEADER_TIMEOUT_S,
            max_header_size=16 * 1024,
            max_body_size=16 * 1024,
        )
        self._server.add_sockets(self._sockets)
        self._started.set()
        self._loop.start()

    def shutdown(self) -> None:
        loop, server = self._loop, self._server
        if loop is None or server is None:
            return

        def stop() -> None:
            server.stop()
            loop.stop()

        loop.add_callback(stop)
        self._thread.join(5)
        self._pool.shutdown(wait=False)

    def server_close(self) -> None:
        """Kept for callers of the former http.server-based server: shutdown() closes all."""


class _BoundedServer(HTTPServer):
    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        if len(self._connections) >= MAX_CONNECTIONS:
            stream.close()
            return
        super().handle_stream(stream, address)


class _Base(RequestHandler):
    def _json(self, status: int, body: dict[str, object]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body).encode() + b"\n")


class _Alive(_Base):
    def initialize(self, health: Health) -> None:
        self.health = health

    def get(self) -> None:
        ok = self.health.alive()
        self._json(200 if ok else 503, {"alive": ok})


class _Ready(_Base):
    def initialize(self, health: Health, pool: ThreadPoolExecutor) -> None:
        self.health = health
        self.pool = pool

    async def get(self) -> None:
        checks = await IOLoop.current().run_in_executor(self.pool, self.health.readiness)
        ok = self.health.alive() and all(checks.values())
        self._json(200 if ok else 503, {"ready": ok, "checks": checks})


class _Metrics(RequestHandler):
    def initialize(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool

    async def get(self) -> None:
        body = await IOLoop.current().run_in_executor(
            self.pool, lambda: generate_latest(_registry())
        )
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(body)


class _NotFound(RequestHandler):
    def prepare(self) -> None:
        self.set_status(404)
        self.set_header("Content-Type", "text/plain")
        self.finish(b"not found\n")


def serve(
    host: str, port: int, health: Health, source: str = "configs.metrics.port"
) -> HealthServer:
    """Bind now, serve in a daemon thread; the caller keeps the server to shut it down.

    A port that cannot be bound (another process on this host has it) is a ConfigError naming
    configs.metrics.port and `source`, where the port was set: exit 2, one line.
    """
    try:
        sockets = bind_sockets(port, address=host)
    except OSError as exc:
        problem = f"{port} cannot be bound on {host}: {exc.strerror or exc}"
        raise ConfigError("configs.metrics.port", problem, source) from None
    server = HealthServer(sockets, health)
    server.start()
    log.info(
        "metrics and health on http://%s:%s",
        host,
        server.server_port,
        extra={"action": "health_started", "port": server.server_port},
    )
    return server
