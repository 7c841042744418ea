"""One small HTTP server per process: /metrics, /healthz (alive) and /readyz (dependencies up).

Liveness means the main loop still turns; readiness means Kafka, Redis or the database (each
process names what it needs) answered at the last look.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)

from jobexec.config_error import ConfigError

log = logging.getLogger("jobexec.health")

Readiness = Callable[[], dict[str, bool]]


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


def serve(
    host: str, port: int, health: Health, source: str = "configs.metrics.port"
) -> ThreadingHTTPServer:
    """Serve in a daemon thread; the caller keeps the server to shut it down.

    A port that cannot be bound (another process on this host has it) is a ConfigError naming
    configs.metrics.port and `source`, where the port was set.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(_registry()), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                ok = health.alive()
                self._json(200 if ok else 503, {"alive": ok})
            elif self.path == "/readyz":
                checks = health.readiness()
                ok = health.alive() and all(checks.values())
                self._json(200 if ok else 503, {"ready": ok, "checks": checks})
            else:
                self._send(404, b"not found\n", "text/plain")

        def _json(self, status: int, body: dict[str, object]) -> None:
            self._send(status, json.dumps(body).encode() + b"\n", "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # probes are not news
            return

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        problem = f"{port} cannot be bound on {host}: {exc.strerror or exc}"
        raise ConfigError("configs.metrics.port", problem, source) from None
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    log.info(
        "metrics and health on http://%s:%s",
        host,
        server.server_port,
        extra={"action": "health_started", "port": server.server_port},
    )
    return server
