"""A real HTTP server on loopback that records every request and answers as scripted."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from jobexec.testing.http_server import LoopbackHttpServer, read_body


class Headers(dict[str, str]):
    """Request headers; lookups ignore case as HTTP does (keys are stored lower-case)."""

    def __getitem__(self, name: str) -> str:
        return super().__getitem__(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


@dataclass(frozen=True)
class RecordedCall:
    """One request as the recorder received it."""

    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    json: Any  # the parsed body, or None when it is empty or not JSON
    received_at: float  # time.time() when the request line arrived


class HttpRecorder:
    """Threaded HTTP server on 127.0.0.1:<free port>; see `respond` and `delay` for scripting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[RecordedCall] = []
        self._statuses: dict[str, deque[int]] = {}
        self._delays: dict[str, float] = {}
        self._headers: dict[str, dict[str, str]] = {}
        self._server = LoopbackHttpServer(_handler_for(self), name="http-recorder")

    @property
    def port(self) -> int:
        return self._server.port

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def calls(self, path: str | None = None) -> list[RecordedCall]:
        """A snapshot of the requests so far, oldest first, optionally for one path only."""
        with self._lock:
            return [c for c in self._calls if path is None or c.path == path]

    def respond(self, path: str, statuses: list[int]) -> None:
        """Answer the next requests to `path` with these statuses in order, then 200."""
        with self._lock:
            self._statuses.setdefault(path, deque()).extend(statuses)

    def reply_headers(self, path: str, headers: dict[str, str]) -> None:
        """Send these headers on every answer to `path` (e.g. Retry-After)."""
        with self._lock:
            self._headers[path] = dict(headers)

    def delay(self, path: str, seconds: float) -> None:
        """Wait this long before answering each request to `path` (0 to stop)."""
        with self._lock:
            self._delays[path] = seconds

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def _record(self, call: RecordedCall) -> tuple[int, float, dict[str, str]]:
        with self._lock:
            self._calls.append(call)
            queue = self._statuses.get(call.path)
            status = queue.popleft() if queue else 200
            return status, self._delays.get(call.path, 0.0), self._headers.get(call.path, {})


def _handler_for(recorder: HttpRecorder) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            received_at = time.time()
            body = read_body(self)
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            url = urlsplit(self.path)
            call = RecordedCall(
                method=self.command,
                path=url.path,
                query=url.query,
                headers=Headers({k.lower(): v for k, v in self.headers.items()}),
                body=body,
                json=parsed,
                received_at=received_at,
            )
            status, delay, headers = recorder._record(call)
            if delay:
                time.sleep(delay)
            reply = json.dumps({"status": status}).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting, which is what delay() tests provoke

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the recorded calls are the log

    return Handler
