"""send_email's TLS settings, read when the executor is built (at worker start)."""

from __future__ import annotations

import pytest

from executors.send_email import SendEmailExecutor
from jobexec.core.config import ConfigError, Settings


@pytest.mark.parametrize(
    ("environ", "tls", "port"),
    [
        ({}, "starttls", 25),
        ({"CONFIGS_SMTP_TLS": "SSL"}, "ssl", 465),
        ({"CONFIGS_SMTP_TLS": "ssl", "CONFIGS_SMTP_PORT": "2465"}, "ssl", 2465),
        ({"CONFIGS_SMTP_TLS": "none"}, "none", 25),
    ],
)
def test_given_a_tls_mode_when_built_then_mode_and_port_follow(
    environ: dict[str, str], tls: str, port: int
) -> None:
    executor = SendEmailExecutor(Settings.load(environ))

    assert (executor.tls, executor.port) == (tls, port)


def test_given_an_unknown_tls_mode_when_loaded_then_config_error_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"configs\.smtp\.tls is invalid"):
        Settings.load({"CONFIGS_SMTP_TLS": "tls1.2"})


@pytest.mark.parametrize(
    "secret", ["SECRETS_SMTP_USERNAME", "SECRETS_SMTP_PASSWORD"], ids=["username", "password"]
)
def test_given_tls_none_and_a_credential_when_built_then_refused_without_printing_it(
    secret: str,
) -> None:
    with pytest.raises(ConfigError) as raised:
        SendEmailExecutor(Settings.load({"CONFIGS_SMTP_TLS": "none", secret: "Hunter2-secret"}))

    assert raised.value.key == "configs.smtp.tls"
    assert "Hunter2-secret" not in str(raised.value)
