"""The Celery configuration jobexec builds: any kombu broker, RabbitMQ's safety settings."""

from __future__ import annotations

import pytest

from jobexec.core.celeryapp import create_app, publisher_config
from jobexec.core.config import ConfigError, Settings
from workers.celeryconf import celery_config, worker_settings


def _settings(**props: str) -> Settings:
    return Settings.load({k.upper(): v for k, v in props.items()})


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "rediss://127.0.0.1:6380/0",
        "redis+socket:///run/redis.sock",
        "sentinel://127.0.0.1:26379;sentinel://127.0.0.2:26379",
        "amqp://guest:guest@127.0.0.1:5672//",
        "amqps://guest:guest@127.0.0.1:5671//",
    ],
)
def test_every_broker_of_the_contract_is_accepted(url: str) -> None:
    config = celery_config(_settings(CONFIGS_CELERY_BROKERURL=url))

    assert config["broker_url"] == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("rabbit://127.0.0.1:5672", "unknown broker transport 'rabbit'"),
        ("127.0.0.1:6379", "is not a URL"),
    ],
)
def test_an_unusable_broker_url_is_a_config_error_naming_the_key(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        celery_config(_settings(CONFIGS_CELERY_BROKERURL=url))

    assert raised.value.key == "configs.celery.broker-url"
    assert problem in str(raised.value)
    assert "CONFIGS_CELERY_BROKERURL" in str(raised.value)


def test_rabbitmq_gets_persistent_messages_and_publisher_confirms() -> None:
    config = celery_config(_settings(CONFIGS_CELERY_BROKERURL="amqp://127.0.0.1//"))

    assert config["task_default_delivery_mode"] == "persistent"
    assert config["broker_transport_options"]["confirm_publish"] is True
    assert config["task_default_queue_type"] == "classic"


def test_quorum_queues_apply_to_the_default_and_the_created_queues() -> None:
    config = celery_config(_settings(CONFIGS_CELERY_QUEUETYPE="Quorum"))

    assert config["task_default_queue_type"] == "quorum"
    assert config["task_create_missing_queue_type"] == "quorum"


def test_an_unknown_queue_type_is_refused_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"configs\.celery\.queue-type is invalid"):
        _settings(CONFIGS_CELERY_QUEUETYPE="stream")


def test_the_bridge_sends_no_task_sent_events_and_the_workers_do() -> None:
    settings = _settings()

    assert create_app(settings).conf.task_send_sent_event is False
    worker = celery_config(settings)
    assert worker["task_send_sent_event"] is True
    assert worker["worker_send_task_events"] is True


def test_publishers_and_workers_agree_on_everything_but_the_workers_own_settings() -> None:
    settings = _settings(CONFIGS_CELERY_BROKERURL="amqp://127.0.0.1//")
    shared = publisher_config(settings)
    worker = celery_config(settings)

    own = set(worker_settings(settings))
    assert {k: v for k, v in worker.items() if k not in own} == {
        k: v for k, v in shared.items() if k not in own
    }
    assert {"task_acks_late", "worker_prefetch_multiplier"} <= own
    assert not own & {"task_routes", "task_serializer", "broker_transport_options"}
