"""A threaded HTTP server on 127.0.0.1:<free port>, served from a daemon thread until `stop`."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackHttpServer:
    """The socket, thread and life cycle shared by the test HTTP servers; the handler answers."""

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        name: str = "http-server",
        tls: ssl.SSLContext | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": poll_interval},
            name=name,
            daemon=True,
        )

    @property
    def port(self) -> int:
        port: int = self.server.server_address[1]
        return port

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body as announced by Content-Length (empty without one)."""
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""
