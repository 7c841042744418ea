"""Outbound calls through the real worker: Retry-After waited out, bad settings refused."""

from __future__ import annotations

import pytest

from jobexec.testing.config_files import ConfigFiles
from jobexec.testing.kafka import KafkaTopics
from jobexec.testing.processes import Cli
from jobexec.testing.redis_queue import RedisBroker
from jobexec.testing.stack import Stack, http_payload

SMTP_SECRET = "smtp-Hunter2-pw"


def test_given_429_with_retry_after_3_when_the_worker_retries_then_it_waits_at_least_3_s(
    stack: Stack,
) -> None:
    # Given an endpoint that answers 429 with Retry-After: 3 once, then 200, and a backoff
    # far below 3 s (100 ms first retry) with room above it (cap 10 s)
    stack.configure(overrides={"configs.retry.max-backoff-ms": "10000"})
    stack.start("bridge", "worker")
    stack.http.respond("/busy", [429])
    stack.http.reply_headers("/busy", {"Retry-After": "3"})
    stack.insert("job_busy", http_payload(stack.http.url("/busy")))

    # When its JobEvent arrives
    stack.kafka.produce_event("job_busy", attempt=1)

    # Then the second call comes at least 3 s after the first, and the run completes
    row = stack.wait_status("job_busy", "COMPLETED", "FAILED", timeout=60)
    assert row["status"] == "COMPLETED"
    assert row["attempts"] == 2
    first, second = stack.http.calls("/busy")
    assert second.received_at - first.received_at >= 3.0


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ({"configs.smtp.tls": "none"}, "configs.smtp.tls"),
        ({"configs.executors.http.allowed-hosts": "api.example.com:99999"}, "allowed-hosts"),
    ],
    ids=["smtp-tls-none-with-credentials", "allowed-hosts-bad-port"],
)
def test_given_a_bad_outbound_setting_when_the_worker_starts_then_it_exits_2_naming_it(
    setting: dict[str, str],
    key: str,
    cli: Cli,
    config_files: ConfigFiles,
    kafka: KafkaTopics,
    redis_broker: RedisBroker,
    pg_url: str,
) -> None:
    app = {
        **kafka.properties(),
        **redis_broker.properties(),
        "configs.jobDb.url": pg_url,
        **setting,
    }
    env = config_files.write(
        app, {"secrets.smtp.username": "mailer", "secrets.smtp.password": SMTP_SECRET}
    )

    result = cli.run("worker", env=env, timeout=60)

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    [line] = result.stderr.strip().splitlines()
    assert key in line
    assert str(config_files.app_path) in line
    assert SMTP_SECRET not in output
