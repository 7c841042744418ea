"""One masking rule set for every output: URLs by parsing, keys by a normalised word set."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobexec.core import logs
from jobexec.core.config import Settings
from jobexec.core.masking import MASK, is_secret_key, mask_text, mask_url, mask_value
from jobexec.core.printable import printable


@pytest.mark.parametrize(
    ("url", "secret", "shown"),
    [
        # A user name with `@`, as kombu accepts it: the authority ends at the LAST `@`.
        ("amqp://me@corp.test:S3cretA@rabbit//", "S3cretA", "amqp://me@corp.test:***@rabbit//"),
        ("redis://:pa/ss@redis:6379/0", "pa/ss", "redis://:***@redis:6379/0"),
        ("redis://u:p@ss@redis:6379/0", "p@ss", "redis://u:***@redis:6379/0"),
        ("https://u:a:b?c#d@h/x", "a:b?c#d", "https://u:***@h/x"),
        ("https://h/x?passwd=hunter2&a=1", "hunter2", "https://h/x?passwd=***&a=1"),
        ("https://h/x?access_token=tok123", "tok123", "https://h/x?access_token=***"),
        ("https://h/x?a=1&sig=s1gn4ture", "s1gn4ture", "https://h/x?a=1&sig=***"),
        ("https://h/x?API_KEY=k3y&pwd=p", "k3y", "https://h/x?API_KEY=***&pwd=***"),
    ],
)
def test_a_url_password_and_secret_query_values_are_hidden(
    url: str, secret: str, shown: str
) -> None:
    assert mask_url(url) == shown
    assert secret not in mask_text(f"connecting to {url} now")


def test_a_url_without_secrets_is_unchanged() -> None:
    for url in ("redis://redis:6379/0", "https://example.com/a?page=2", "sqlite:///x.db"):
        assert mask_url(url) == url
        assert mask_text(url) == url


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "X-API_KEY",
        "X-Auth",
        "auth",
        "Authorization",
        "pass",
        "passwd",
        "pwd",
        "private_key",
        "session",
        "signature",
        "Cookie",
        "credentials",
        "configs.kafka.properties.ssl.key.pem",
        "sasl.oauthbearer.config",
    ],
)
def test_secret_keys_are_recognised_after_normalising(name: str) -> None:
    assert is_secret_key(name)


@pytest.mark.parametrize(
    "name", ["configs.kafka.topic.job-events", "url", "method", "body", "to", "subject", "task"]
)
def test_ordinary_keys_stay_visible(name: str) -> None:
    assert not is_secret_key(name)


def test_a_payload_is_masked_by_key_in_mappings_pair_lists_and_text() -> None:
    payload = {
        "task": "http",
        "url": "https://svc:urlpw@example.com/hook?access_token=qtok",
        "method": "POST",
        "headers": [["X-API_KEY", "hk"], ["Accept", "json"], {"name": "X-Auth", "value": "xa"}],
        "body": {"credentials": {"pass": "cp"}, "items": [{"session": "sv", "n": 1}]},
        "private_key": "pk",
        "signature": "sg",
    }

    masked = mask_value(payload)

    assert masked == {
        "task": "http",
        "url": "https://svc:***@example.com/hook?access_token=***",
        "method": "POST",
        "headers": [["X-API_KEY", MASK], ["Accept", "json"], {"name": "X-Auth", "value": MASK}],
        "body": {"credentials": MASK, "items": [{"session": MASK, "n": 1}]},
        "private_key": MASK,
        "signature": MASK,
    }
    text = json.dumps(masked)
    for secret in ("urlpw", "qtok", "hk", "xa", "cp", "sv", "pk", "sg"):
        assert f'"{secret}"' not in text and f":{secret}@" not in text and f"={secret}" not in text


def test_the_config_dump_masks_urls_by_parsing_and_kafka_secret_properties(
    tmp_path: Path,
) -> None:
    props = tmp_path / "application.properties"
    props.write_text(
        "configs.celery.broker-url=amqp://me@corp.test:S3cretA@rabbit//\n"
        "configs.jobDb.url=postgresql+psycopg://u:db/pw@h/jobs?sslpassword=SSLPW9\n"
        "configs.kafka.properties.ssl.key.pem=-----BEGIN PRIVATE KEY-----PEMBODY\n"
        "configs.kafka.properties.sasl.oauthbearer.config=clientSecret=OAUTHSEC\n"
        "configs.kafka.properties.security.protocol=SASL_SSL\n"
        "configs.kafka.consumer.session-timeout-ms=6000\n"
        "configs.kafka.topic.job-events=events\n"
    )

    dump = Settings.load({"EXECUTOR_CONFIG_LOCATION": str(props)}).masked()

    text = "\n".join(f"{k}={v}" for k, v in dump.items())
    for secret in ("S3cretA", "db/pw", "SSLPW9", "PEMBODY", "OAUTHSEC"):
        assert secret not in text
    assert dump["configs.celery.broker-url"] == "amqp://me@corp.test:***@rabbit//"
    assert dump["kafka.ssl.key.pem"] == MASK
    assert dump["kafka.sasl.oauthbearer.config"] == MASK
    # Ordinary values stay visible.
    assert dump["kafka.security.protocol"] == "SASL_SSL"
    assert dump["configs.kafka.consumer.session-timeout-ms"] == "6000"
    assert dump["configs.kafka.topic.job-events"] == "events"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_log_lines_mask_urls_in_messages_and_extras_and_escape_controls(
    fmt: str, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure(fmt)
    log = logging.getLogger("jobexec.test")

    log.warning(
        "broker %s down; job %s",
        "amqp://me@corp.test:S3cretA@rabbit//",
        "job_\x1b]0;owned\x07",
        extra={"action": "broker_down", "url": "redis://:R3dis@r", "headers": {"X-Auth": "xa1"}},
    )

    err = capsys.readouterr().err
    for secret in ("S3cretA", "R3dis", "xa1"):
        assert secret not in err
    assert "\x1b" not in err and "\x07" not in err
    if fmt == "plain":
        assert "job_\\x1b]0;owned\\x07" in err
    else:
        event = json.loads(err)
        assert event["url"] == "redis://:***@r"
        assert event["message"].endswith("job_\x1b]0;owned\x07")  # escaped by JSON itself


def test_printable_escapes_controls_and_keeps_ordinary_text() -> None:
    assert printable("job_1 été ✓") == "job_1 été ✓"
    assert printable("a\x1b[2Jb\nc\u202ed\x00") == "a\\x1b[2Jb\\nc\\u202ed\\x00"
