"""Typed settings sections: defaults in the units the code uses, and errors naming the key."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobexec.core.config import ConfigError, Settings
from jobexec.core.sections import (
    BridgeSection,
    CelerySection,
    ExecutorsSection,
    HistorySection,
    HttpSection,
    JobDbSection,
    KafkaSection,
    LeaseSection,
    ListenSection,
    LoggingSection,
    MetricsSection,
    RetrySection,
    SchedulerSection,
    SmtpSection,
    SweeperSection,
    TracingSection,
)

DEFAULTS = Settings.load({})


def test_given_no_settings_when_built_then_sections_hold_the_documented_defaults() -> None:
    kafka = KafkaSection.from_settings(DEFAULTS)
    assert (kafka.bootstrap_servers, kafka.job_events_topic, kafka.dead_letter_topic) == (
        None,
        "job-events",
        "job-events.DLT",
    )
    assert BridgeSection.from_settings(DEFAULTS) == BridgeSection(
        group_id="job-consumers",
        auto_offset_reset="earliest",
        max_poll_records=500,
        session_timeout_ms=45000,
        max_poll_interval_ms=300000,
        fetch_max_wait_ms=500,
        commit_interval_ms=1000,
        max_queue_depth=10000,
    )
    celery = CelerySection.from_settings(DEFAULTS)
    assert celery == CelerySection(
        "redis://localhost:6379/0", "redis://localhost:6379/0", "jobs", "classic", 1
    )
    assert RetrySection.from_settings(DEFAULTS) == RetrySection(3, 1.0, 60.0)
    assert LeaseSection.from_settings(DEFAULTS) == LeaseSection(timedelta(minutes=1), 15.0, 5.0)
    assert SchedulerSection.from_settings(DEFAULTS) == SchedulerSection(500, 1.0)
    assert SweeperSection.from_settings(DEFAULTS) == SweeperSection(timedelta(minutes=5), 10.0)
    assert ExecutorsSection.from_settings(DEFAULTS) == ExecutorsSection(3600.0, 10.0)
    assert HttpSection.from_settings(DEFAULTS).allowed_hosts == ""
    assert SmtpSection.from_settings(DEFAULTS) == SmtpSection(
        "localhost", 25, "starttls", "jobexec@localhost"
    )
    assert JobDbSection.from_settings(DEFAULTS) == JobDbSection(None, "jobs")
    assert HistorySection.from_settings(DEFAULTS) == HistorySection(timedelta(days=30), 3600.0)
    metrics = MetricsSection.from_settings(DEFAULTS)
    assert (metrics.host, metrics.port) == ("127.0.0.1", 0)
    tracing = TracingSection.from_settings(DEFAULTS)
    assert (tracing.endpoint, tracing.service_name) == (None, None)
    assert LoggingSection.from_settings(DEFAULTS) == LoggingSection("plain", "INFO")
    assert ListenSection.console(DEFAULTS) == ListenSection("127.0.0.1", 8080)
    assert ListenSection.flower(DEFAULTS) == ListenSection("127.0.0.1", 5555)


def test_given_milliseconds_when_read_then_sections_hold_seconds_and_durations() -> None:
    settings = Settings.load(
        {
            "CONFIGS_LEASE_DURATIONMS": "2500",
            "CONFIGS_LEASE_HEARTBEATMS": "1250",
            "CONFIGS_LEASE_RESCUEINTERVALMS": "0",
            "CONFIGS_SWEEPER_ABANDONEDAFTERMS": "1500",
            "CONFIGS_RETRY_INITIALBACKOFFMS": "250",
            "CONFIGS_EXECUTORS_CANCELGRACEMS": "750",
            "CONFIGS_HISTORY_PRUNEINTERVALMS": "0",
        }
    )

    assert LeaseSection.from_settings(settings) == LeaseSection(
        timedelta(milliseconds=2500), 1.25, 0.0
    )
    assert SweeperSection.from_settings(settings).abandoned_after == timedelta(seconds=1.5)
    assert RetrySection.from_settings(settings).initial_backoff == 0.25
    assert ExecutorsSection.from_settings(settings).cancel_grace == 0.75
    assert HistorySection.from_settings(settings).prune_interval == 0.0


@pytest.mark.parametrize(
    ("variable", "key"),
    [
        ("CONFIGS_RETRY_MAXATTEMPTS", "configs.retry.max-attempts"),
        ("CONFIGS_LEASE_RESCUEINTERVALMS", "configs.lease.rescue-interval-ms"),
        ("CONFIGS_SCHEDULER_BATCHSIZE", "configs.scheduler.batch-size"),
        ("CONFIGS_CONSOLE_PORT", "configs.console.port"),
    ],
)
def test_given_a_bad_value_when_loaded_then_the_error_names_the_key(
    variable: str, key: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.load({variable: "-1"})

    assert raised.value.key == key
    assert f"{key} is invalid: '-1'" in str(raised.value)
    assert variable in str(raised.value)  # where the value came from


def test_given_no_bootstrap_servers_when_a_client_is_made_then_the_key_is_missing() -> None:
    kafka = KafkaSection.from_settings(DEFAULTS)

    with pytest.raises(ConfigError, match=r"configs\.kafka\.bootstrap-servers is missing"):
        kafka.client_properties()


def test_given_bootstrap_and_passthrough_properties_when_read_then_clients_get_both() -> None:
    settings = Settings.load(
        {
            "CONFIGS_KAFKA_BOOTSTRAPSERVERS": "k1:9092",
            "CONFIGS_KAFKA_PROPERTIES_CLIENT_RACK": "eu-1a",
            "CONFIGS_KAFKA_TOPIC_DEADLETTER": "letters",
        }
    )

    kafka = KafkaSection.from_settings(settings)

    assert kafka.client_properties() == {"bootstrap.servers": "k1:9092", "client.rack": "eu-1a"}
    assert kafka.dead_letter_topic == "letters"


def test_given_a_broker_password_when_read_then_it_is_put_into_the_url_kombu_connects_to() -> None:
    settings = Settings.load(
        {
            "CONFIGS_CELERY_BROKERURL": "amqp://jobs@rabbit:5672//",
            "SECRETS_CELERY_BROKERPASSWORD": "s3cret/x",
        }
    )

    celery = CelerySection.from_settings(settings)

    assert celery.broker_url == "amqp://jobs:s3cret%2Fx@rabbit:5672//"
    assert celery.configured_broker_url == "amqp://jobs@rabbit:5672//"


@pytest.mark.parametrize(
    ("environ", "port"),
    [
        ({"CONFIGS_SMTP_TLS": "ssl"}, 465),
        ({"CONFIGS_SMTP_TLS": "ssl", "CONFIGS_SMTP_PORT": "25"}, 25),
        ({"CONFIGS_SMTP_TLS": "starttls"}, 25),
    ],
)
def test_given_implicit_tls_when_no_port_is_set_then_smtp_uses_465(
    environ: dict[str, str], port: int
) -> None:
    assert SmtpSection.from_settings(Settings.load(environ)).port == port


def test_given_tls_none_and_a_password_when_read_then_refused_naming_the_tls_key() -> None:
    settings = Settings.load({"CONFIGS_SMTP_TLS": "none", "SECRETS_SMTP_PASSWORD": "Hunter2"})

    with pytest.raises(ConfigError) as raised:
        SmtpSection.from_settings(settings)

    assert raised.value.key == "configs.smtp.tls"
    assert "Hunter2" not in str(raised.value)


def test_sections_holding_secrets_do_not_show_them_in_their_repr() -> None:
    settings = Settings.load(
        {
            "SECRETS_SMTP_PASSWORD": "smtp-Hunter2",
            "SECRETS_DATASOURCE_PASSWORD": "db-Hunter2",
            "CONFIGS_KAFKA_BOOTSTRAPSERVERS": "k1:9092",
            "SECRETS_KAFKA_PROPERTIES_SASL_PASSWORD": "kafka-Hunter2",
            "CONFIGS_CELERY_BROKERURL": "redis://:inline-Hunter2@redis:6379/0",
            "SECRETS_CELERY_BROKERPASSWORD": "broker-Hunter2",
        }
    )

    shown = " ".join(
        repr(section)
        for section in (
            SmtpSection.from_settings(settings),
            JobDbSection.from_settings(settings),
            KafkaSection.from_settings(settings),
            CelerySection.from_settings(settings),
        )
    )

    assert "Hunter2" not in shown
