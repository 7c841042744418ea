"""Fixtures of the executor integration tests: a real HTTP server and a real SMTP server."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller

from executors.http import HttpExecutor
from executors.send_email import SendEmailExecutor
from jobexec.core.config import Settings
from jobexec.testing.network import free_port
from tests.integration.executors.local_servers import (
    Authenticator,
    CollectingHandler,
    ScriptedHttpServer,
    SmtpServer,
)


@pytest.fixture
def closed_port() -> int:
    """A local port nobody listens on: connecting to it is refused."""
    return free_port()


@pytest.fixture
def http_server() -> Iterator[ScriptedHttpServer]:
    server = ScriptedHttpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def unaccepting_port() -> Iterator[int]:
    """A loopback port whose accept queue is full: a new connection hangs in its handshake."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port: int = listener.getsockname()[1]
    held: list[socket.socket] = []
    try:
        for _ in range(16):  # Linux queues backlog + 1 connections; then SYNs go unanswered
            client = socket.socket()
            client.settimeout(0.2)
            try:
                client.connect(("127.0.0.1", port))
            except TimeoutError:
                client.close()
                break
            held.append(client)
        else:
            pytest.fail("could not fill the accept queue of a loopback listener")
        yield port
    finally:
        for client in held:
            client.close()
        listener.close()


@pytest.fixture
def keep_alive_server() -> Iterator[ScriptedHttpServer]:
    """ScriptedHttpServer speaking HTTP/1.1 with persistent connections."""
    server = ScriptedHttpServer(keep_alive=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def https_server(tls_certificate: ssl.SSLContext) -> Iterator[ScriptedHttpServer]:
    """ScriptedHttpServer over TLS, with a certificate for 127.0.0.1, localhost and
    service.test from the test CA."""
    server = ScriptedHttpServer(tls=tls_certificate)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_http_executor() -> Iterator[Callable[..., HttpExecutor]]:
    """Builds HttpExecutors from environment-style settings; closes them afterwards."""
    made: list[HttpExecutor] = []

    def make(**environ: str) -> HttpExecutor:
        executor = HttpExecutor(Settings.load(environ))
        made.append(executor)
        return executor

    yield make
    for executor in made:
        executor.close()


@pytest.fixture
def http_executor(make_http_executor: Callable[..., HttpExecutor]) -> HttpExecutor:
    return make_http_executor()


@contextmanager
def _smtp(tls: str, **options: Any) -> Iterator[SmtpServer]:
    handler = CollectingHandler()
    authenticator = Authenticator()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticator,
        **options,
    )
    controller.start()
    try:
        yield SmtpServer(handler, controller.port, authenticator, tls)
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 without TLS that still offers AUTH (for SMTP_USER only):
    the server a careless client would send its password to in clear."""
    with _smtp("none", auth_require_tls=False) as server:
        yield server


@pytest.fixture
def tls_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1, localhost and service.test from a
    test CA the process trusts."""
    ca = trustme.CA()
    ca_file = tmp_path / "test-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))  # read by ssl.create_default_context
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost", "service.test").configure_cert(context)
    return context


@pytest.fixture
def starttls_smtp_server(tls_certificate: ssl.SSLContext) -> Iterator[SmtpServer]:
    """SMTP on 127.0.0.1 offering STARTTLS, and AUTH only after it."""
    with _smtp("starttls", tls_context=tls_certificate, auth_require_tls=True) as server:
        yield server


@pytest.fixture
def implicit_tls_smtp_server(tls_certificate: ssl.SSLContext) -> Iterator[SmtpServer]:
    """SMTPS: TLS from the first byte (what port 465 serves)."""
    # aiosmtpd counts only STARTTLS as TLS for AUTH: with implicit TLS every byte is encrypted
    with _smtp("ssl", ssl_context=tls_certificate, auth_require_tls=False) as server:
        yield server


@pytest.fixture
def send_email_executor(smtp_server: SmtpServer) -> SendEmailExecutor:
    return SendEmailExecutor(smtp_server.settings())
