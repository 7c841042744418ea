"""Fixtures of the executor integration tests: a real HTTP server and a real SMTP server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from aiosmtpd.controller import Controller

from executors.http import HttpExecutor
from executors.send_email import SendEmailExecutor
from jobexec.config import Settings
from tests.integration.executors.local_servers import (
    CollectingHandler,
    ScriptedHttpServer,
    SmtpServer,
    authenticate,
)
from tests.support.network import free_port


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


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 offering AUTH without TLS (for SMTP_USER only)."""
    handler = CollectingHandler()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield SmtpServer(handler, controller.port)
    controller.stop()


@pytest.fixture
def send_email_executor(smtp_server: SmtpServer) -> SendEmailExecutor:
    return SendEmailExecutor(smtp_server.settings())
