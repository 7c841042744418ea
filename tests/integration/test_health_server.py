"""The health server against slow and hostile clients: real sockets on loopback, in-process.

A client that opens many connections and never finishes its request held one thread each
with the former server (150 half-sent requests, 150 threads). Now they cost no thread, are
closed after the header timeout, and /healthz keeps answering.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from jobexec.core import health as health_module
from jobexec.core.health import Health, HealthServer, serve
from jobexec.testing.waiting import wait_until

HALF_SENT = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"  # the blank line never comes


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[HealthServer]:
    monkeypatch.setattr(health_module, "HEADER_TIMEOUT_S", 2.0)
    health = Health()
    health.readiness = lambda: {"kafka": True}
    running = serve("127.0.0.1", 0, health)
    try:
        yield running
    finally:
        running.shutdown()


def get(port: int, path: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return response.status, json.loads(response.read())


def half_sent(port: int, count: int) -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(HALF_SENT)
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket) -> bool:
    sock.settimeout(0.05)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_given_150_half_sent_requests_then_healthz_answers_and_threads_stay_bounded(
    server: HealthServer,
) -> None:
    threads_before = threading.active_count()
    sockets = half_sent(server.server_port, 150)
    try:
        # When a probe comes while they are held
        status, body = get(server.server_port, "/healthz")
        ready_status, ready = get(server.server_port, "/readyz")

        # Then it is answered, and the held connections cost no thread each
        assert (status, body) == (200, {"alive": True})
        assert ready_status == 200 and ready["checks"] == {"kafka": True}
        assert threading.active_count() - threads_before <= health_module.HANDLER_THREADS
    finally:
        for sock in sockets:
            sock.close()


def test_given_a_half_sent_request_then_the_server_closes_it_after_the_header_timeout(
    server: HealthServer,
) -> None:
    [sock] = half_sent(server.server_port, 1)
    with contextlib.closing(sock):
        assert not closed_by_server(sock)

        wait_until(lambda: closed_by_server(sock), 10, message="the connection stayed open")


def test_given_more_connections_than_the_bound_then_the_extra_ones_are_closed_at_once(
    server: HealthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health_module, "MAX_CONNECTIONS", 5)
    sockets = half_sent(server.server_port, 5)
    try:
        wait_until(lambda: not any(closed_by_server(s) for s in sockets), 2)
        [extra] = half_sent(server.server_port, 1)
        with contextlib.closing(extra):
            wait_until(lambda: closed_by_server(extra), 2, message="over the bound, still open")
    finally:
        for sock in sockets:
            sock.close()


def test_unknown_paths_are_404_and_the_metrics_are_served(server: HealthServer) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/nope", timeout=5)
    assert caught.value.code == 404
    with urllib.request.urlopen(
        f"http://127.0.0.1:{server.server_port}/metrics", timeout=5
    ) as response:
        assert response.status == 200
        assert b"# HELP" in response.read()
