"""Real local servers the executor integration tests talk to: HTTP and SMTP, on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import json
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler
from typing import Any

from aiosmtpd.smtp import AuthResult, LoginPassword

from jobexec.core.config import Settings
from jobexec.testing.http_server import LoopbackHttpServer, read_body

SMTP_USER = "mailer"
SMTP_PASSWORD = "s3cret-Passw0rd"


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it; header names lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    header_lines: tuple[tuple[str, str], ...] = ()  # as sent, repeats included
    client_port: int = 0  # the same on two requests: one kept-alive connection

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """A scripted answer: status, optional delay before answering, extra headers.

    With `trickle`, the status line is sent at once and then one byte of a never-ending
    header every `trickle` seconds, until the client hangs up or the server stops.
    """

    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    trickle: float | None = None


class ScriptedHttpServer:
    """Records every request and answers with the next scripted reply (200 when none is left)."""

    def __init__(self, tls: ssl.SSLContext | None = None, keep_alive: bool = False) -> None:
        self.requests: list[RecordedRequest] = []
        self.replies: deque[Reply] = deque()
        self.released = threading.Event()  # ends scripted delays at teardown
        self.trickled_at: list[float] = []  # when each trickled byte was sent
        self._lock = threading.Lock()
        handler = self._handler_class()
        if keep_alive:
            handler.protocol_version = "HTTP/1.1"  # keeps the connection open between requests
        self.server_names: list[str | None] = []  # TLS SNI of each handshake
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.server_names.append(name)
        self._server = LoopbackHttpServer(handler, "scripted-http", tls, poll_interval=0.05)

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: int | Reply) -> None:
        self.replies.extend(r if isinstance(r, Reply) else Reply(r) for r in replies)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self.released.set()
        self._server.stop()

    def _record(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self.replies.popleft() if self.replies else Reply()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = read_body(self)
                headers = {name.lower(): value for name, value in self.headers.items()}
                lines = tuple(self.headers.items())
                reply = server._record(
                    RecordedRequest(
                        self.command, self.path, headers, body, lines, self.client_address[1]
                    )
                )
                if reply.delay:
                    server.released.wait(reply.delay)
                if reply.trickle is not None:
                    self._trickle(reply)
                    return
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client stopped waiting (timeout tests)

            def _trickle(self, reply: Reply) -> None:
                self.close_connection = True
                try:
                    self.wfile.write(f"HTTP/1.1 {reply.status} OK\r\nX-Slow: ".encode())
                    self.wfile.flush()
                    while not server.released.wait(reply.trickle):
                        self.wfile.write(b"a")
                        self.wfile.flush()
                        server.trickled_at.append(time.monotonic())
                except OSError:
                    pass  # the client gave up: what the trickle tests expect

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


# --- SMTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


class CollectingHandler:
    """aiosmtpd handler: keeps every delivered message; refuses recipients or data as told."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.rcpt_answers: dict[str, str] = {}  # recipient -> SMTP answer instead of 250
        self.data_answer: str | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.rcpt_answers:
            return self.rcpt_answers[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data_answer is not None:
            return self.data_answer
        # SMTP carries CRLF line ends; compare message text as it was written
        content = envelope.original_content.replace(b"\r\n", b"\n")
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.deliveries.append(Delivery(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class Authenticator:
    """aiosmtpd authenticator accepting SMTP_USER / SMTP_PASSWORD only; records every AUTH."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, bool]] = []  # (mechanism, over TLS)

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        # session.ssl is set after STARTTLS only; an implicit-TLS transport has its ssl_object
        over_tls = session.ssl is not None or server.transport.get_extra_info("ssl_object")
        self.attempts.append((mechanism, bool(over_tls)))
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == SMTP_USER.encode()
            and auth_data.password == SMTP_PASSWORD.encode()
        )
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@dataclass
class SmtpServer:
    """The running SMTP server: its handler, its port and settings that point at it."""

    handler: CollectingHandler
    port: int
    authenticator: Authenticator
    tls: str = "none"  # the configs.smtp.tls value that fits this server

    def settings(self, **environ: str) -> Settings:
        base = {
            "CONFIGS_SMTP_HOST": "127.0.0.1",
            "CONFIGS_SMTP_PORT": str(self.port),
            "CONFIGS_SMTP_FROM": "jobs@example.com",
            "CONFIGS_SMTP_TLS": self.tls,
        }
        return Settings.load({**base, **environ})
