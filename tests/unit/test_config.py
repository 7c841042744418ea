"""Configuration: .properties files and environment overrides, as Spring Boot reads them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from jobexec.core import config
from jobexec.core.config import ConfigError, Key, Settings, relaxed_env_name, settings_or_exit


def write_properties(path: Path, props: Mapping[str, str]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in props.items()), encoding="utf-8")
    return path


@pytest.fixture
def app_file(tmp_path: Path) -> Path:
    return tmp_path / "application.properties"


# --- where the files come from -----------------------------------------------------------------


def test_reads_files_named_by_executor_config_location(app_file: Path) -> None:
    write_properties(app_file, {"configs.celery.queue": "from-file"})

    settings = Settings.load({"EXECUTOR_CONFIG_LOCATION": str(app_file)})

    assert settings.get("configs.celery.queue") == "from-file"
    assert settings.files == (str(app_file),)


def test_falls_back_to_spring_config_location(app_file: Path) -> None:
    write_properties(app_file, {"configs.celery.queue": "spring"})

    settings = Settings.load({"SPRING_CONFIG_LOCATION": str(app_file)})

    assert settings.get("configs.celery.queue") == "spring"


def test_executor_config_location_wins_over_spring_config_location(tmp_path: Path) -> None:
    ours = write_properties(tmp_path / "ours.properties", {"configs.celery.queue": "ours"})
    spring = write_properties(tmp_path / "spring.properties", {"configs.celery.queue": "spring"})

    settings = Settings.load(
        {"EXECUTOR_CONFIG_LOCATION": str(ours), "SPRING_CONFIG_LOCATION": str(spring)}
    )

    assert settings.get("configs.celery.queue") == "ours"
    assert settings.files == (str(ours),)


def test_accepts_file_prefix_on_each_entry(tmp_path: Path) -> None:
    app = write_properties(tmp_path / "app.properties", {"configs.celery.queue": "q"})
    secrets = write_properties(tmp_path / "secrets.properties", {"secrets.smtp.password": "pw"})

    settings = Settings.load({"SPRING_CONFIG_LOCATION": f"file:{app}, file:{secrets}"})

    assert settings.get("configs.celery.queue") == "q"
    assert settings.get("secrets.smtp.password") == "pw"


def test_later_files_override_earlier_ones(tmp_path: Path) -> None:
    first = write_properties(
        tmp_path / "first.properties",
        {"configs.celery.queue": "first", "configs.smtp.host": "mail.first"},
    )
    second = write_properties(tmp_path / "second.properties", {"configs.celery.queue": "second"})

    settings = Settings.load({"EXECUTOR_CONFIG_LOCATION": f"{first},{second}"})

    assert settings.get("configs.celery.queue") == "second"
    assert settings.get("configs.smtp.host") == "mail.first"


def test_directory_location_reads_application_and_secrets_properties(tmp_path: Path) -> None:
    write_properties(tmp_path / "application.properties", {"configs.celery.queue": "dir"})
    write_properties(tmp_path / "secrets.properties", {"secrets.datasource.password": "pw"})
    write_properties(tmp_path / "other.properties", {"configs.smtp.host": "not-read"})

    settings = Settings.load({"EXECUTOR_CONFIG_LOCATION": f"file:{tmp_path}/"})

    assert settings.get("configs.celery.queue") == "dir"
    assert settings.get("secrets.datasource.password") == "pw"
    assert settings.get("configs.smtp.host") == "localhost"


def test_optional_location_that_does_not_exist_is_skipped(app_file: Path, tmp_path: Path) -> None:
    write_properties(app_file, {"configs.celery.queue": "q"})
    missing = tmp_path / "missing.properties"

    settings = Settings.load({"EXECUTOR_CONFIG_LOCATION": f"{app_file},optional:file:{missing}"})

    assert settings.get("configs.celery.queue") == "q"
    assert settings.files == (str(app_file),)


def test_missing_config_file_is_an_error_naming_the_file_and_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "nope.properties"

    with pytest.raises(ConfigError) as caught:
        Settings.load({"EXECUTOR_CONFIG_LOCATION": f"file:{missing}"})

    assert "EXECUTOR_CONFIG_LOCATION" in str(caught.value)
    assert str(missing) in str(caught.value)


def test_no_location_at_all_gives_the_defaults() -> None:
    settings = Settings.load({})

    assert settings.files == ()
    assert settings.get("configs.kafka.topic.job-events") == "job-events"
    assert settings.get("configs.kafka.consumer.group-id") == "job-consumers"
    assert settings.get("configs.kafka.consumer.auto-offset-reset") == "earliest"
    assert settings.get("configs.retry.max-attempts") == 3
    assert settings.get("configs.retry.initial-backoff-ms") == 1000
    assert settings.get("configs.retry.max-backoff-ms") == 60000
    assert settings.get("configs.celery.broker-url") == "redis://localhost:6379/0"
    assert settings.get("configs.celery.queue") == "jobs"
    assert settings.get("configs.bridge.max-queue-depth") == 10000
    assert settings.get("configs.jobDb.name") == "jobs"
    assert settings.get("configs.jobDb.url") is None


def test_properties_file_syntax_is_java_properties(app_file: Path) -> None:
    app_file.write_text(
        "# a comment\n"
        "! another comment\n"
        "configs.celery.queue : spaced\n"
        "configs.smtp.host mail.example.com\n"
        "configs.kafka.bootstrap-servers=broker-1:9092,\\\n"
        "    broker-2:9092\n",
        encoding="utf-8",
    )

    settings = Settings.load({"EXECUTOR_CONFIG_LOCATION": str(app_file)})

    assert settings.get("configs.celery.queue") == "spaced"
    assert settings.get("configs.smtp.host") == "mail.example.com"
    assert settings.get("configs.kafka.bootstrap-servers") == "broker-1:9092,broker-2:9092"


# --- environment overrides ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "env_name"),
    [
        ("configs.kafka.bootstrap-servers", "CONFIGS_KAFKA_BOOTSTRAPSERVERS"),
        ("configs.jobDb.url", "CONFIGS_JOBDB_URL"),
        ("configs.retry.max-attempts", "CONFIGS_RETRY_MAXATTEMPTS"),
        ("secrets.datasource.password", "SECRETS_DATASOURCE_PASSWORD"),
    ],
)
def test_relaxed_env_name_follows_spring_boot(key: str, env_name: str) -> None:
    assert relaxed_env_name(key) == env_name


def test_env_var_overrides_file_value(app_file: Path) -> None:
    write_properties(
        app_file,
        {"configs.kafka.bootstrap-servers": "file:9092", "configs.retry.max-attempts": "3"},
    )

    settings = Settings.load(
        {
            "EXECUTOR_CONFIG_LOCATION": str(app_file),
            "CONFIGS_KAFKA_BOOTSTRAPSERVERS": "env:9092",
            "CONFIGS_RETRY_MAXATTEMPTS": "7",
        }
    )

    assert settings.get("configs.kafka.bootstrap-servers") == "env:9092"
    assert settings.get("configs.retry.max-attempts") == 7
    assert settings.source("configs.retry.max-attempts") == (
        "environment variable CONFIGS_RETRY_MAXATTEMPTS"
    )


def test_env_var_overrides_camel_case_key(app_file: Path) -> None:
    write_properties(app_file, {"configs.jobDb.name": "from_file"})

    settings = Settings.load(
        {"EXECUTOR_CONFIG_LOCATION": str(app_file), "CONFIGS_JOBDB_NAME": "from_env"}
    )

    assert settings.get("configs.jobDb.name") == "from_env"


def test_file_key_matches_regardless_of_case_and_dashes(app_file: Path) -> None:
    write_properties(app_file, {"configs.jobdb.url": "sqlite:///x.db", "configs.celery.Queue": "q"})

    settings = Settings.load({"EXECUTOR_CONFIG_LOCATION": str(app_file)})

    assert settings.get("configs.jobDb.url") == "sqlite:///x.db"
    assert settings.get("configs.celery.queue") == "q"


# --- typed values and errors -------------------------------------------------------------------


def test_integers_are_parsed_and_whitespace_trimmed(app_file: Path) -> None:
    write_properties(app_file, {"configs.retry.max-attempts": " 5 ", "configs.celery.queue": "q "})

    settings = Settings.load({"EXECUTOR_CONFIG_LOCATION": str(app_file)})

    assert settings.get("configs.retry.max-attempts") == 5
    assert settings.get("configs.celery.queue") == "q"


def test_invalid_int_in_file_names_the_key_and_the_file(app_file: Path) -> None:
    write_properties(app_file, {"configs.retry.max-attempts": "three"})

    with pytest.raises(ConfigError) as caught:
        Settings.load({"EXECUTOR_CONFIG_LOCATION": str(app_file)})

    message = str(caught.value)
    assert "configs.retry.max-attempts" in message
    assert str(app_file) in message
    assert "'three'" in message
    assert caught.value.key == "configs.retry.max-attempts"


def test_invalid_int_in_environment_names_the_key_and_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load({"CONFIGS_BRIDGE_MAXQUEUEDEPTH": "lots"})

    message = str(caught.value)
    assert "configs.bridge.max-queue-depth" in message
    assert "environment variable CONFIGS_BRIDGE_MAXQUEUEDEPTH" in message


@pytest.mark.parametrize("value", ["0", "-1"])
def test_positive_settings_refuse_zero_and_negatives(value: str) -> None:
    with pytest.raises(ConfigError, match=r"configs\.retry\.max-attempts .*must be positive"):
        Settings.load({"CONFIGS_RETRY_MAXATTEMPTS": value})


def test_invalid_choice_is_an_error() -> None:
    with pytest.raises(ConfigError, match="auto-offset-reset"):
        Settings.load({"CONFIGS_KAFKA_CONSUMER_AUTOOFFSETRESET": "sometimes"})


def test_invalid_secret_value_is_masked_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # No shipped secret key can fail to parse, so give one a parser that can.
    name = "secrets.smtp.password"
    strict = Key(name, None, config._positive_int, "a secret that must be a number")
    monkeypatch.setitem(config._KEYS_BY_CANON, name, strict)

    with pytest.raises(ConfigError) as caught:
        Settings.load({"SECRETS_SMTP_PASSWORD": "hunter2"})

    message = str(caught.value)
    assert "hunter2" not in message
    assert "***" in message
    assert name in message


def test_require_missing_key_names_the_key_and_the_files(app_file: Path) -> None:
    write_properties(app_file, {"configs.celery.queue": "q"})
    settings = Settings.load({"EXECUTOR_CONFIG_LOCATION": str(app_file)})

    with pytest.raises(ConfigError) as caught:
        settings.require("configs.kafka.bootstrap-servers")

    assert "configs.kafka.bootstrap-servers is missing" in str(caught.value)
    assert str(app_file) in str(caught.value)


def test_require_missing_key_without_files_names_the_environment_variable() -> None:
    settings = Settings.load({})

    with pytest.raises(ConfigError) as caught:
        settings.require("configs.jobDb.url")

    assert "configs.jobDb.url is missing" in str(caught.value)
    assert "CONFIGS_JOBDB_URL" in str(caught.value)


def test_require_treats_empty_value_as_missing() -> None:
    settings = Settings.load({"CONFIGS_KAFKA_BOOTSTRAPSERVERS": ""})

    with pytest.raises(ConfigError, match="is missing"):
        settings.require("configs.kafka.bootstrap-servers")


def test_settings_or_exit_exits_2_with_one_line(
    app_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_properties(app_file, {"configs.smtp.port": "twenty-five"})

    with pytest.raises(SystemExit) as caught:
        settings_or_exit({"EXECUTOR_CONFIG_LOCATION": str(app_file)})

    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("jobexec: configuration error: configs.smtp.port")
    assert str(app_file) in err
    assert "Traceback" not in err


def test_settings_or_exit_returns_settings_when_valid() -> None:
    settings = settings_or_exit({"CONFIGS_CELERY_QUEUE": "q"})

    assert settings.get("configs.celery.queue") == "q"


# --- derived settings --------------------------------------------------------------------------


def test_dead_letter_topic_defaults_to_job_events_topic_with_dlt_suffix() -> None:
    assert Settings.load({}).dead_letter_topic == "job-events.DLT"
    renamed = Settings.load({"CONFIGS_KAFKA_TOPIC_JOBEVENTS": "orders"})
    assert renamed.dead_letter_topic == "orders.DLT"


def test_dead_letter_topic_can_be_set_explicitly() -> None:
    settings = Settings.load({"CONFIGS_KAFKA_TOPIC_DEADLETTER": "graveyard"})

    assert settings.dead_letter_topic == "graveyard"


def test_kafka_properties_pass_through_from_files(tmp_path: Path) -> None:
    app = write_properties(
        tmp_path / "application.properties",
        {
            "configs.kafka.bootstrap-servers": "broker:9093",
            "configs.kafka.properties.security.protocol": "SASL_SSL",
            "configs.kafka.properties.sasl.mechanism": "SCRAM-SHA-512",
            "configs.kafka.properties.ssl.ca.location": "/etc/ca.pem",
        },
    )
    secrets = write_properties(
        tmp_path / "secrets.properties",
        {
            "secrets.kafka.properties.sasl.username": "svc",
            "secrets.kafka.properties.sasl.password": "s3cret",
        },
    )

    settings = Settings.load({"EXECUTOR_CONFIG_LOCATION": f"{app},{secrets}"})

    assert settings.kafka_client_properties == {
        "bootstrap.servers": "broker:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "ssl.ca.location": "/etc/ca.pem",
        "sasl.username": "svc",
        "sasl.password": "s3cret",
    }


def test_kafka_properties_pass_through_from_environment(app_file: Path) -> None:
    write_properties(
        app_file,
        {
            "configs.kafka.bootstrap-servers": "broker:9092",
            "configs.kafka.properties.security.protocol": "PLAINTEXT",
        },
    )

    settings = Settings.load(
        {
            "EXECUTOR_CONFIG_LOCATION": str(app_file),
            "CONFIGS_KAFKA_PROPERTIES_SECURITY_PROTOCOL": "SSL",
            "SECRETS_KAFKA_PROPERTIES_SASL_PASSWORD": "pw",
        }
    )

    props = settings.kafka_client_properties
    assert props["security.protocol"] == "SSL"
    assert props["sasl.password"] == "pw"
    assert props["bootstrap.servers"] == "broker:9092"


def test_kafka_client_properties_require_bootstrap_servers() -> None:
    settings = Settings.load({"CONFIGS_KAFKA_PROPERTIES_SECURITY_PROTOCOL": "SSL"})

    with pytest.raises(ConfigError, match=r"configs\.kafka\.bootstrap-servers is missing"):
        _ = settings.kafka_client_properties


def test_broker_url_without_password_is_unchanged() -> None:
    settings = Settings.load({"CONFIGS_CELERY_BROKERURL": "redis://redis:6379/1"})

    assert settings.broker_url == "redis://redis:6379/1"


def test_broker_url_gets_the_secret_password_injected() -> None:
    settings = Settings.load(
        {
            "CONFIGS_CELERY_BROKERURL": "redis://redis:6379/1",
            "SECRETS_CELERY_BROKERPASSWORD": "p@ss:word/1",
        }
    )

    assert settings.broker_url == "redis://:p%40ss%3Aword%2F1@redis:6379/1"


def test_broker_url_keeps_the_user_when_injecting_the_password() -> None:
    settings = Settings.load(
        {
            "CONFIGS_CELERY_BROKERURL": "amqp://guest@rabbit:5672/vhost",
            "SECRETS_CELERY_BROKERPASSWORD": "pw",
        }
    )

    assert settings.broker_url == "amqp://guest:pw@rabbit:5672/vhost"


def test_broker_url_with_ipv6_host_keeps_the_brackets() -> None:
    settings = Settings.load(
        {"CONFIGS_CELERY_BROKERURL": "redis://[::1]:6379/0", "SECRETS_CELERY_BROKERPASSWORD": "pw"}
    )

    assert settings.broker_url == "redis://:pw@[::1]:6379/0"


def test_allowed_hosts_is_a_lower_case_set_and_empty_by_default() -> None:
    assert Settings.load({}).allowed_hosts == frozenset()
    settings = Settings.load(
        {"CONFIGS_EXECUTORS_HTTP_ALLOWEDHOSTS": " API.example.com, hooks.example.org ,,"}
    )
    assert settings.allowed_hosts == frozenset({"api.example.com", "hooks.example.org"})


# --- masking -----------------------------------------------------------------------------------


def test_masked_dump_hides_every_secret(tmp_path: Path) -> None:
    app = write_properties(
        tmp_path / "application.properties",
        {
            "configs.celery.queue": "q",
            "configs.kafka.properties.security.protocol": "SASL_SSL",
            "configs.kafka.properties.ssl.key.password": "keypass",
            "configs.kafka.properties.sasl.oauthbearer.client.secret": "cl13nt",
        },
    )
    secrets = write_properties(
        tmp_path / "secrets.properties",
        {
            "secrets.datasource.username": "dbuser",
            "secrets.datasource.password": "dbpass",
            "secrets.celery.broker-password": "brokerpass",
            "secrets.kafka.properties.sasl.username": "kafkauser",
        },
    )

    masked = Settings.load(
        {
            "EXECUTOR_CONFIG_LOCATION": f"{app},{secrets}",
            "SECRETS_SMTP_PASSWORD": "smtppass",
            "SECRETS_KAFKA_PROPERTIES_SASL_PASSWORD": "kafkapass",
        }
    ).masked()

    assert masked["configs.celery.queue"] == "q"
    assert masked["kafka.security.protocol"] == "SASL_SSL"
    for key in (
        "secrets.datasource.username",
        "secrets.datasource.password",
        "secrets.celery.broker-password",
        "secrets.smtp.password",
        "kafka.ssl.key.password",
        "kafka.sasl.oauthbearer.client.secret",
        "kafka.sasl.username",
        "kafka.sasl.password",
    ):
        assert masked[key] == "***", key
    shown = set(masked.values())
    for secret in ("dbuser", "dbpass", "brokerpass", "smtppass", "keypass", "cl13nt", "kafkapass"):
        assert secret not in shown
    assert "kafkauser" not in shown


def test_masked_dump_leaves_out_unset_keys() -> None:
    masked = Settings.load({"CONFIGS_CELERY_QUEUE": "q"}).masked()

    assert masked == {"configs.celery.queue": "q"}


def test_plugin_keys_are_read_from_files_and_environment_by_the_same_rules(
    tmp_path: Path,
) -> None:
    # Given a plugin's own key in a file, and another overridden in the environment.
    props = tmp_path / "application.properties"
    props.write_text("configs.executors.slack.channel=#ops\nconfigs.executors.slack.url=http://a\n")
    settings = Settings.load(
        {
            "SPRING_CONFIG_LOCATION": f"file:{props}",
            "CONFIGS_EXECUTORS_SLACK_URL": "http://b",
        }
    )
    assert settings.lookup("configs.executors.slack.channel") == "#ops"
    assert settings.lookup("configs.executors.slack.url") == "http://b"
    assert settings.lookup("configs.executors.slack.token", "none") == "none"


def test_a_heartbeat_longer_than_half_the_lease_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load({"CONFIGS_LEASE_DURATIONMS": "10000", "CONFIGS_LEASE_HEARTBEATMS": "6000"})
    assert caught.value.key == "configs.lease.heartbeat-ms"
    assert "CONFIGS_LEASE_HEARTBEATMS" in str(caught.value)
