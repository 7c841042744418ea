"""The `send_email` executor: sends one message through the configured SMTP server."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from executors.base import Executor, ExecutorError, JobRun, PermanentError, TransientError
from executors.http import job_id_header
from jobexec.core.config import Settings
from jobexec.core.sections import SMTP_TLS_KEY, SmtpSection

SMTP_TIMEOUT_SECONDS = 30
# CR or LF in a header value would start a new header (injection); NUL ends strings in C MTAs
_HEADER_BREAKERS = frozenset("\r\n\x00")


class StartTlsMissing(smtplib.SMTPException):
    """configs.smtp.tls is starttls and the server does not offer STARTTLS."""


def _check_text(name: str, value: str, header: bool) -> None:
    if header and not _HEADER_BREAKERS.isdisjoint(value):
        raise PermanentError(f"{name} must not contain line breaks or NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise PermanentError(f"{name} is not valid Unicode text (a lone surrogate)") from None


@dataclass(frozen=True)
class Email:
    """The validated `send_email` payload of a run."""

    to: tuple[str, ...]
    subject: str
    body: str

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Email:
        """Validate the payload; PermanentError naming the field when it is unusable."""
        to = payload.get("to")
        recipients = (to,) if isinstance(to, str) else to
        if (
            not isinstance(recipients, Sequence)
            or isinstance(recipients, str)
            or not recipients
            or not all(isinstance(r, str) and r.strip() for r in recipients)
        ):
            raise PermanentError("payload.to must be an address or a non-empty list of addresses")
        subject = payload.get("subject")
        if not isinstance(subject, str):
            raise PermanentError("payload.subject is required and must be a string")
        body = payload.get("body")
        if not isinstance(body, str):
            raise PermanentError("payload.body is required and must be a string")
        for recipient in recipients:
            _check_text("payload.to", recipient, header=True)
        _check_text("payload.subject", subject, header=True)
        _check_text("payload.body", body, header=False)
        return cls(tuple(r.strip() for r in recipients), subject, body)

    def message(self, sender: str, job_id: str) -> EmailMessage:
        """The message to send; PermanentError when a header cannot be encoded."""
        message = EmailMessage()
        try:
            message["From"] = sender
            message["To"] = ", ".join(self.to)
            message["Subject"] = self.subject
            message["X-Job-Id"] = job_id_header(job_id)
            message.set_content(self.body)
            message.as_bytes()  # what smtplib will do: fail here, permanently, not mid-send
        except Exception as exc:
            # the email package's header parser raises assorted errors on malformed addresses
            # (AttributeError for "To: .:"): all of them are this payload's mistake
            raise PermanentError(
                f"payload cannot form an email message: {type(exc).__name__}"
            ) from None
        return message


class SendEmailExecutor(Executor):
    """Sends `subject` and `body` to `to` from `configs.smtp.from` via `configs.smtp.host`.

    Refused recipients, rejected data (5xx) and failed authentication fail the run; connection
    errors, timeouts and 4xx answers are retried. `configs.smtp.tls` decides the transport:
    `starttls` (required: a server that does not offer it fails the run before anything is
    sent), `ssl` (implicit TLS, port 465 by default) or `none` (only without credentials).
    """

    task = "send_email"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        smtp = SmtpSection.from_settings(settings)
        self.host = smtp.host
        self.tls = smtp.tls
        self.port = smtp.port
        self.sender = smtp.sender
        self.username = smtp.username
        self._password = smtp.password

    def execute(self, run: JobRun) -> None:
        email = Email.from_payload(run.payload)
        message = email.message(self.sender, run.job_id)
        try:
            refused = self._send(message, email.to)
        except smtplib.SMTPRecipientsRefused as exc:
            raise _refused(exc.recipients) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise PermanentError(
                f"SMTP login as {self.username} refused: {_answer(exc.smtp_code, exc.smtp_error)}"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise _by_code(
                exc.smtp_code,
                f"SMTP server refused the message: {_answer(exc.smtp_code, exc.smtp_error)}",
            ) from None
        except StartTlsMissing as exc:
            # the server's capability list, not a passing fault (or a downgrade on the path):
            # another try would meet the same answer, and the operator must act
            raise PermanentError(str(exc)) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise TransientError(f"SMTP server {self._server} disconnected: {exc}") from None
        except smtplib.SMTPException as exc:
            # what is left (no AUTH offered, no suitable mechanism) is a configuration problem
            raise PermanentError(f"SMTP server {self._server}: {exc}") from None
        except OSError as exc:  # refused, unreachable, timed out, TLS failure
            raise TransientError(
                f"cannot reach SMTP server {self._server}: {type(exc).__name__}: {exc}"
            ) from None
        if refused:
            # the others already have it: a retry would send it to them twice
            raise PermanentError(
                f"sent, but refused for {_describe(refused)}; not retried to avoid duplicates"
            )

    @property
    def _server(self) -> str:
        return f"{self.host}:{self.port}"

    def _send(
        self, message: EmailMessage, recipients: tuple[str, ...]
    ) -> dict[str, tuple[int, bytes]]:
        context = ssl.create_default_context()
        smtp = (
            smtplib.SMTP_SSL(self.host, self.port, timeout=SMTP_TIMEOUT_SECONDS, context=context)
            if self.tls == "ssl"
            else smtplib.SMTP(self.host, self.port, timeout=SMTP_TIMEOUT_SECONDS)
        )
        with smtp:
            smtp.ehlo()
            if self.tls == "starttls":
                if not smtp.has_extn("starttls"):
                    raise StartTlsMissing(
                        f"SMTP server {self._server} does not offer STARTTLS "
                        f"({SMTP_TLS_KEY}=starttls): nothing was sent"
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self._password)
            return smtp.send_message(message, from_addr=self.sender, to_addrs=list(recipients))


def _answer(code: int, text: bytes | str) -> str:
    decoded = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return f"{code} {decoded}".strip()


def _by_code(code: int, reason: str) -> ExecutorError:
    # SMTP's own rule: 4xx is a temporary failure, 5xx a permanent one
    return TransientError(reason) if 400 <= code < 500 else PermanentError(reason)


def _describe(refused: Mapping[str, tuple[int, bytes | str]]) -> str:
    return ", ".join(f"{to} ({_answer(code, text)})" for to, (code, text) in refused.items())


def _refused(recipients: Mapping[str, tuple[int, bytes | str]]) -> ExecutorError:
    reason = f"every recipient refused: {_describe(recipients)}"
    if recipients and all(400 <= code < 500 for code, _text in recipients.values()):
        return TransientError(reason)  # greylisting or a full mailbox: try again later
    return PermanentError(reason)
