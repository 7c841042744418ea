"""Broker and Celery settings a user gets wrong: exit 2, one line naming the key and the file."""

from __future__ import annotations

import pytest

from jobexec.testing.config_files import ConfigFiles
from jobexec.testing.kafka import KafkaTopics
from jobexec.testing.processes import Cli
from jobexec.testing.redis_queue import RedisBroker

SECRET = "hunter2xyz"


def _base(kafka: KafkaTopics, redis_broker: RedisBroker, pg_url: str) -> dict[str, str]:
    return {**kafka.properties(), **redis_broker.properties(), "configs.jobDb.url": pg_url}


@pytest.mark.parametrize(
    ("setting", "value", "problem"),
    [
        ("configs.celery.broker-url", "rabbit://127.0.0.1:5672//", "unknown broker transport"),
        ("configs.celery.properties.worker_max_task_per_child", "10", "is not a Celery setting"),
        ("configs.celery.properties.task_serializer", "pickle", "is fixed to json"),
        ("configs.celery.queue-type", "stream", "must be classic or quorum"),
    ],
)
@pytest.mark.parametrize("command", ["bridge", "worker"])
def test_given_a_bad_broker_or_celery_setting_then_the_process_exits_2_naming_it(
    command: str,
    setting: str,
    value: str,
    problem: str,
    cli: Cli,
    config_files: ConfigFiles,
    kafka: KafkaTopics,
    redis_broker: RedisBroker,
    pg_url: str,
) -> None:
    app = {**_base(kafka, redis_broker, pg_url), setting: value}
    env = config_files.write(app, {"secrets.datasource.password": SECRET})

    result = cli.run(command, env=env, timeout=60)

    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert setting in lines[0] and problem in lines[0], lines[0]
    assert str(config_files.app_path) in lines[0], lines[0]
    assert SECRET not in output
