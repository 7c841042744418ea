"""Bad settings stop a process with exit 2 and one line naming the key; secrets never show."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from jobexec.testing.commands import assert_one_clean_line
from jobexec.testing.config_files import ConfigFiles, clean_environment
from jobexec.testing.kafka import KafkaTopics
from jobexec.testing.processes import Cli
from jobexec.testing.redis_queue import RedisBroker

SECRET = "hunter2xyz"


def _base(kafka: KafkaTopics, redis_broker: RedisBroker, pg_url: str) -> dict[str, str]:
    return {**kafka.properties(), **redis_broker.properties(), "configs.jobDb.url": pg_url}


def test_given_no_bootstrap_servers_when_the_bridge_starts_then_it_exits_2_naming_key_and_file(
    cli: Cli, config_files: ConfigFiles, kafka: KafkaTopics, redis_broker: RedisBroker, pg_url: str
) -> None:
    app = _base(kafka, redis_broker, pg_url)
    del app["configs.kafka.bootstrap-servers"]
    env = config_files.write(app, {"secrets.datasource.password": SECRET})

    result = cli.run("bridge", env=env, timeout=30)

    assert result.returncode == 2, result.stdout + result.stderr
    assert_one_clean_line(
        result.stdout + result.stderr,
        result.stderr,
        "configs.kafka.bootstrap-servers",
        str(config_files.app_path),
    )
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize("command", [("bridge",), ("worker",), ("scheduler",), ("db", "upgrade")])
def test_given_a_non_integer_max_attempts_when_a_process_starts_then_it_exits_2_naming_it(
    command: tuple[str, ...],
    cli: Cli,
    config_files: ConfigFiles,
    kafka: KafkaTopics,
    redis_broker: RedisBroker,
    pg_url: str,
) -> None:
    app = {**_base(kafka, redis_broker, pg_url), "configs.retry.max-attempts": "abc"}
    env = config_files.write(app, {"secrets.datasource.password": SECRET})

    result = cli.run(*command, env=env, timeout=30)

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert_one_clean_line(
        output, result.stderr, "configs.retry.max-attempts", str(config_files.app_path)
    )
    assert SECRET not in output


def test_given_secrets_when_the_configuration_is_printed_or_used_then_no_secret_shows(
    cli: Cli, config_files: ConfigFiles, kafka: KafkaTopics, redis_broker: RedisBroker, pg_url: str
) -> None:
    secrets = {
        "secrets.datasource.username": "postgres",
        "secrets.datasource.password": SECRET,
        "secrets.kafka.properties.sasl.password": SECRET + "-kafka",
        "secrets.smtp.password": SECRET + "-smtp",
    }
    env = config_files.write(_base(kafka, redis_broker, pg_url), secrets)

    # Secrets may come from the environment too
    env["SECRETS_CELERY_BROKERPASSWORD"] = SECRET + "-env"
    env["SECRETS_KAFKA_PROPERTIES_SSL_KEY_PASSWORD"] = SECRET + "-env-kafka"

    # `jobexec config` prints the settings, secrets masked
    shown = cli.run("config", env=env, timeout=30)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert SECRET not in shown.stdout + shown.stderr
    assert "configs.kafka.bootstrap-servers=" + kafka.bootstrap in shown.stdout
    assert "secrets.datasource.password" in shown.stdout

    # A command that logs its database URL masks the password
    upgraded = cli.run("db", "upgrade", env=env, timeout=60)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert SECRET not in upgraded.stdout + upgraded.stderr

    # An error about the database that holds the password does not reveal it either
    unreachable = {**_base(kafka, redis_broker, pg_url)}
    unreachable["configs.jobDb.url"] = "jdbc:postgresql://127.0.0.1:1/"
    env = config_files.write(unreachable, secrets)
    failed = cli.run("db", "upgrade", env=env, timeout=60)
    assert failed.returncode != 0
    assert SECRET not in failed.stdout + failed.stderr

    # Nor does a configuration error in the same files
    env = config_files.write(
        {**_base(kafka, redis_broker, pg_url), "configs.retry.max-attempts": "abc"}, secrets
    )
    invalid = cli.run("config", env=env, timeout=30)
    assert invalid.returncode == 2
    assert SECRET not in invalid.stdout + invalid.stderr


@pytest.mark.parametrize(
    ("file_name", "text", "must_name"),
    [
        ("application.yml", "configs:\n  celery:\n    queue: [open\n", ("not valid YAML at line",)),
        (
            "application.properties",
            "configs.smtp.host=${app.a}\napp.a=${configs.smtp.host}\n",
            ("circular placeholder reference", "configs.smtp.host -> app.a -> configs.smtp.host"),
        ),
        (
            "application.properties",
            "configs.smtp.host=${SMTP_RELAY_HOST}\n",
            ("configs.smtp.host", "${SMTP_RELAY_HOST}"),
        ),
    ],
    ids=["yaml-syntax", "placeholder-cycle", "placeholder-unset"],
)
def test_given_a_spring_source_error_when_a_process_starts_then_it_exits_2_in_one_line(
    file_name: str, text: str, must_name: tuple[str, ...], cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / file_name
    path.write_text(text, encoding="utf-8")
    env = {**clean_environment(), "SPRING_CONFIG_LOCATION": f"file:{path}"}

    result = cli.run("config", env=env, timeout=30)

    assert result.returncode == 2, result.stdout + result.stderr
    assert_one_clean_line(result.stdout + result.stderr, result.stderr, str(path), *must_name)


def test_given_a_classpath_location_when_a_process_starts_then_it_asks_for_a_file_path(
    cli: Cli,
) -> None:
    env = {**clean_environment(), "SPRING_CONFIG_LOCATION": "classpath:/application.yml"}

    result = cli.run("scheduler", env=env, timeout=30)

    assert result.returncode == 2, result.stdout + result.stderr
    assert_one_clean_line(
        result.stdout + result.stderr, result.stderr, "SPRING_CONFIG_LOCATION", "give a file path"
    )


def test_given_a_metrics_port_in_use_when_a_second_process_starts_then_it_exits_2_naming_it(
    cli: Cli, config_files: ConfigFiles, kafka: KafkaTopics, redis_broker: RedisBroker, pg_url: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        app = {
            **_base(kafka, redis_broker, pg_url),
            "configs.metrics.host": "127.0.0.1",
            "configs.metrics.port": str(port),
        }
        env = config_files.write(app)

        result = cli.run("bridge", env=env, timeout=60)

    # (the bridge may log its start-up before it binds: the error is one line, the last)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    errors = [line for line in result.stderr.splitlines() if line.startswith("jobexec: ")]
    assert errors == [result.stderr.strip().splitlines()[-1]], result.stderr
    for text in ("configs.metrics.port", f"{port} cannot be bound", str(config_files.app_path)):
        assert text in errors[0], errors[0]
