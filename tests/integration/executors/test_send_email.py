"""The send_email executor against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

from typing import Any

import pytest

from executors import JobRun, PermanentError, TransientError
from executors.send_email import SendEmailExecutor
from jobexec.core.config import ConfigError, Settings
from tests.integration.executors.local_servers import SMTP_PASSWORD, SMTP_USER, SmtpServer


def email_run(**payload: Any) -> JobRun:
    fields = {"task": "send_email", "to": "ada@example.com", "subject": "Hi", "body": "Hello"}
    return JobRun("job_42", 1, "run-1", {**fields, **payload})


def test_given_a_valid_payload_when_executed_then_the_message_arrives_as_written(
    smtp_server: SmtpServer, send_email_executor: SendEmailExecutor
) -> None:
    send_email_executor.execute(
        email_run(to=["ada@example.com", "bob@example.com"], subject="Report", body="All good.\n")
    )

    [delivery] = smtp_server.handler.deliveries
    assert delivery.mail_from == "jobs@example.com"
    assert delivery.rcpt_tos == ["ada@example.com", "bob@example.com"]
    message = delivery.message
    assert message["From"] == "jobs@example.com"
    assert message["To"] == "ada@example.com, bob@example.com"
    assert message["Subject"] == "Report"
    assert message.get_content() == "All good.\n"


def test_given_a_single_address_and_non_ascii_text_when_executed_then_it_arrives_intact(
    smtp_server: SmtpServer, send_email_executor: SendEmailExecutor
) -> None:
    send_email_executor.execute(email_run(to="zoë@example.com", subject="Grüße", body="Ça va ✓\n"))

    [delivery] = smtp_server.handler.deliveries
    assert delivery.message["Subject"] == "Grüße"
    assert delivery.message.get_content() == "Ça va ✓\n"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"to": None}, "to"),
        ({"to": []}, "to"),
        ({"to": ["ok@example.com", 3]}, "to"),
        ({"subject": 5}, "subject"),
        ({"body": None}, "body"),
    ],
)
def test_given_a_bad_payload_when_executed_then_it_fails_permanently_and_sends_nothing(
    payload: dict[str, Any],
    field: str,
    smtp_server: SmtpServer,
    send_email_executor: SendEmailExecutor,
) -> None:
    with pytest.raises(PermanentError, match=f"payload.{field}"):
        send_email_executor.execute(email_run(**payload))

    assert smtp_server.handler.deliveries == []


def test_given_no_smtp_server_when_executed_then_the_error_is_transient(closed_port: int) -> None:
    executor = SendEmailExecutor(
        Settings.load({"CONFIGS_SMTP_HOST": "127.0.0.1", "CONFIGS_SMTP_PORT": str(closed_port)})
    )

    with pytest.raises(TransientError, match="cannot reach SMTP server"):
        executor.execute(email_run())


def test_given_an_unknown_recipient_when_executed_then_the_error_is_permanent(
    smtp_server: SmtpServer, send_email_executor: SendEmailExecutor
) -> None:
    smtp_server.handler.rcpt_answers["nobody@example.com"] = "550 no such user"

    with pytest.raises(PermanentError, match="550 no such user"):
        send_email_executor.execute(email_run(to="nobody@example.com"))

    assert smtp_server.handler.deliveries == []


def test_given_a_busy_mailbox_when_executed_then_the_error_is_transient(
    smtp_server: SmtpServer, send_email_executor: SendEmailExecutor
) -> None:
    smtp_server.handler.rcpt_answers["ada@example.com"] = "450 mailbox busy"

    with pytest.raises(TransientError, match="450"):
        send_email_executor.execute(email_run())


def test_given_one_of_two_recipients_refused_when_executed_then_it_fails_without_resending(
    smtp_server: SmtpServer, send_email_executor: SendEmailExecutor
) -> None:
    smtp_server.handler.rcpt_answers["nobody@example.com"] = "550 no such user"

    with pytest.raises(PermanentError, match=r"nobody@example\.com"):
        send_email_executor.execute(email_run(to=["ada@example.com", "nobody@example.com"]))

    [delivery] = smtp_server.handler.deliveries
    assert delivery.rcpt_tos == ["ada@example.com"]


@pytest.mark.parametrize(
    ("answer", "error"),
    [("554 content rejected", PermanentError), ("451 try again later", TransientError)],
)
def test_given_the_server_rejects_the_data_when_executed_then_the_code_decides_retry(
    answer: str,
    error: type[Exception],
    smtp_server: SmtpServer,
    send_email_executor: SendEmailExecutor,
) -> None:
    smtp_server.handler.data_answer = answer

    with pytest.raises(error, match=answer.split()[0]):
        send_email_executor.execute(email_run())


def test_given_valid_credentials_over_starttls_when_executed_then_it_logs_in_and_delivers(
    starttls_smtp_server: SmtpServer,
) -> None:
    executor = SendEmailExecutor(
        starttls_smtp_server.settings(
            SECRETS_SMTP_USERNAME=SMTP_USER, SECRETS_SMTP_PASSWORD=SMTP_PASSWORD
        )
    )

    executor.execute(email_run())

    assert len(starttls_smtp_server.handler.deliveries) == 1
    assert [over_tls for _mechanism, over_tls in starttls_smtp_server.authenticator.attempts] == [
        True
    ]


def test_given_a_wrong_password_when_executed_then_it_fails_permanently_without_the_password(
    starttls_smtp_server: SmtpServer,
) -> None:
    executor = SendEmailExecutor(
        starttls_smtp_server.settings(
            SECRETS_SMTP_USERNAME=SMTP_USER, SECRETS_SMTP_PASSWORD="wrong-pw-123"
        )
    )

    with pytest.raises(PermanentError) as raised:
        executor.execute(email_run())

    assert "login" in str(raised.value)
    assert "wrong-pw-123" not in str(raised.value)
    assert starttls_smtp_server.handler.deliveries == []


@pytest.mark.parametrize("credentials", [True, False], ids=["with-login", "without-login"])
def test_given_starttls_and_a_server_without_it_when_executed_then_nothing_is_sent(
    credentials: bool, smtp_server: SmtpServer
) -> None:
    login = {"SECRETS_SMTP_USERNAME": SMTP_USER, "SECRETS_SMTP_PASSWORD": SMTP_PASSWORD}
    executor = SendEmailExecutor(
        smtp_server.settings(CONFIGS_SMTP_TLS="starttls", **(login if credentials else {}))
    )

    with pytest.raises(PermanentError, match="does not offer STARTTLS"):
        executor.execute(email_run())

    assert smtp_server.authenticator.attempts == []  # the password never left
    assert smtp_server.handler.deliveries == []


def test_given_implicit_tls_when_executed_then_it_logs_in_over_tls_and_delivers(
    implicit_tls_smtp_server: SmtpServer,
) -> None:
    executor = SendEmailExecutor(
        implicit_tls_smtp_server.settings(
            SECRETS_SMTP_USERNAME=SMTP_USER, SECRETS_SMTP_PASSWORD=SMTP_PASSWORD
        )
    )

    executor.execute(email_run())

    assert len(implicit_tls_smtp_server.handler.deliveries) == 1
    assert [tls for _m, tls in implicit_tls_smtp_server.authenticator.attempts] == [True]


def test_given_implicit_tls_and_a_plain_server_when_executed_then_no_auth_and_transient(
    smtp_server: SmtpServer,
) -> None:
    executor = SendEmailExecutor(
        smtp_server.settings(
            CONFIGS_SMTP_TLS="ssl",
            SECRETS_SMTP_USERNAME=SMTP_USER,
            SECRETS_SMTP_PASSWORD=SMTP_PASSWORD,
        )
    )

    with pytest.raises(TransientError, match="cannot reach SMTP server"):
        executor.execute(email_run())

    assert smtp_server.authenticator.attempts == []
    assert smtp_server.handler.deliveries == []


def test_given_implicit_tls_with_an_untrusted_certificate_when_executed_then_no_auth(
    implicit_tls_smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE")  # the test CA is no longer trusted
    executor = SendEmailExecutor(
        implicit_tls_smtp_server.settings(
            SECRETS_SMTP_USERNAME=SMTP_USER, SECRETS_SMTP_PASSWORD=SMTP_PASSWORD
        )
    )

    with pytest.raises(TransientError, match="CERTIFICATE_VERIFY_FAILED"):
        executor.execute(email_run())

    assert implicit_tls_smtp_server.authenticator.attempts == []
    assert implicit_tls_smtp_server.handler.deliveries == []


def test_given_tls_none_with_credentials_when_built_then_config_error_names_the_key(
    smtp_server: SmtpServer,
) -> None:
    with pytest.raises(ConfigError) as raised:
        SendEmailExecutor(smtp_server.settings(SECRETS_SMTP_USERNAME=SMTP_USER))

    assert raised.value.key == "configs.smtp.tls"
    assert "environment variable CONFIGS_SMTP_TLS" in str(raised.value)
    assert SMTP_PASSWORD not in str(raised.value)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"subject": "Hi\r\nBcc: eve@example.com"}, "payload.subject"),
        ({"subject": "Hi\nBcc: eve@example.com"}, "payload.subject"),
        ({"to": "ada@example.com\r\nRCPT TO:<eve@example.com>"}, "payload.to"),
        ({"to": ["ada@example.com", "bob@example.com\x00"]}, "payload.to"),
        ({"body": "Hello \ud800"}, "payload.body"),
        ({"subject": "Hi \udfff"}, "payload.subject"),
        ({"to": ".:"}, "payload cannot form an email message"),
    ],
)
def test_given_header_injection_or_a_lone_surrogate_when_executed_then_permanent_and_nothing_sent(
    payload: dict[str, Any],
    field: str,
    smtp_server: SmtpServer,
    send_email_executor: SendEmailExecutor,
) -> None:
    with pytest.raises(PermanentError, match=field):
        send_email_executor.execute(email_run(**payload))

    assert smtp_server.handler.deliveries == []
