"""`configs.celery.properties.*`: Celery settings passed through, typed, nested, validated."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobexec.core.config import ConfigError, Settings
from workers.celeryconf import celery_config


def _load(tmp_path: Path, props: dict[str, str], **environ: str) -> Settings:
    path = tmp_path / "application.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()), encoding="utf-8")
    return Settings.load({"EXECUTOR_CONFIG_LOCATION": str(path), **environ})


def test_a_setting_is_passed_under_its_name_with_its_type(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        {
            "configs.celery.properties.worker_max_tasks_per_child": "100",
            "configs.celery.properties.broker_pool_limit": "-3",
            "configs.celery.properties.broker_heartbeat": "2.5",
            "configs.celery.properties.worker_disable_rate_limits": "TRUE",
            "configs.celery.properties.task_compression": "gzip",
        },
    )

    config = celery_config(settings)

    assert config["worker_max_tasks_per_child"] == 100
    assert config["broker_pool_limit"] == -3
    assert config["broker_heartbeat"] == 2.5
    assert config["worker_disable_rate_limits"] is True
    assert config["task_compression"] == "gzip"


def test_dots_below_the_name_build_mappings_merged_over_jobexecs_own(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        {
            "configs.celery.properties.broker_transport_options.master_name": "mymaster",
            "configs.celery.properties.broker_transport_options.sentinel_kwargs.db": "1",
            "configs.celery.properties.broker_use_ssl.cert_reqs": "required",
        },
    )

    config = celery_config(settings)

    options = config["broker_transport_options"]
    assert options["master_name"] == "mymaster"
    assert options["sentinel_kwargs"] == {"db": 1}
    assert options["confirm_publish"] is True, "jobexec's own options are kept"
    assert "visibility_timeout" in options
    assert config["broker_use_ssl"] == {"cert_reqs": "required"}


def test_environment_variables_keep_underscores_in_the_name_and_nest_after_it() -> None:
    settings = Settings.load(
        {
            "CONFIGS_CELERY_PROPERTIES_WORKER_MAX_TASKS_PER_CHILD": "7",
            "CONFIGS_CELERY_PROPERTIES_BROKER_TRANSPORT_OPTIONS_MASTER_NAME": "m1",
            "CONFIGS_CELERY_PROPERTIES_BROKER_TRANSPORT_OPTIONS_SENTINEL_KWARGS__PASSWORD": "pw",
        }
    )

    config = celery_config(settings)

    assert config["worker_max_tasks_per_child"] == 7
    assert config["broker_transport_options"]["master_name"] == "m1"
    assert config["broker_transport_options"]["sentinel_kwargs"] == {"password": "pw"}


def test_an_environment_variable_overrides_the_file(tmp_path: Path) -> None:
    settings = _load(
        tmp_path,
        {"configs.celery.properties.worker_max_tasks_per_child": "100"},
        CONFIGS_CELERY_PROPERTIES_WORKER_MAX_TASKS_PER_CHILD="5",
    )

    assert celery_config(settings)["worker_max_tasks_per_child"] == 5


def test_an_unknown_setting_is_an_error_naming_it_and_the_file(tmp_path: Path) -> None:
    settings = _load(tmp_path, {"configs.celery.properties.worker_max_task_per_child": "100"})

    with pytest.raises(ConfigError) as raised:
        celery_config(settings)

    message = str(raised.value)
    assert "configs.celery.properties.worker_max_task_per_child is not a Celery setting" in message
    assert str(tmp_path / "application.properties") in message


def test_an_unknown_setting_in_the_environment_names_the_variable() -> None:
    settings = Settings.load({"CONFIGS_CELERY_PROPERTIES_NO_SUCH_THING": "1"})

    with pytest.raises(ConfigError, match="CONFIGS_CELERY_PROPERTIES_NO_SUCH_THING"):
        celery_config(settings)


@pytest.mark.parametrize(
    ("setting", "reason"),
    [
        ("task_serializer", "json"),
        ("accept_content", "json"),
        ("task_acks_late", "never lost"),
        ("broker_url", "configs.celery.broker-url"),
        ("task_default_queue", "configs.celery.queue"),
    ],
)
def test_settings_jobexec_owns_are_refused(tmp_path: Path, setting: str, reason: str) -> None:
    settings = _load(tmp_path, {f"configs.celery.properties.{setting}": "pickle"})

    with pytest.raises(ConfigError, match=reason) as raised:
        celery_config(settings)

    assert raised.value.key == f"configs.celery.properties.{setting}"


def test_nesting_below_a_plain_value_is_an_error(tmp_path: Path) -> None:
    given_plain = _load(
        tmp_path,
        {
            "configs.celery.properties.worker_concurrency.x": "1",
            "configs.celery.properties.worker_concurrency": "4",
        },
    )
    jobexecs_plain = _load(tmp_path, {"configs.celery.properties.worker_send_task_events.x": "1"})

    with pytest.raises(ConfigError, match="also given a plain value"):
        celery_config(given_plain)
    with pytest.raises(ConfigError, match="not a mapping"):
        celery_config(jobexecs_plain)


def test_secret_properties_are_masked_in_the_dump(tmp_path: Path) -> None:
    path = tmp_path / "secrets.properties"
    path.write_text(
        "secrets.celery.properties.broker_transport_options.sentinel_kwargs.password=s3nt1nel\n",
        encoding="utf-8",
    )
    settings = Settings.load(
        {
            "EXECUTOR_CONFIG_LOCATION": str(path),
            "CONFIGS_CELERY_PROPERTIES_WORKER_MAX_TASKS_PER_CHILD": "9",
        }
    )

    masked = settings.masked()

    assert masked["celery.broker_transport_options.sentinel_kwargs.password"] == "***"
    assert masked["celery.worker_max_tasks_per_child"] == "9"
    assert "s3nt1nel" not in masked.values()
    options = celery_config(settings)["broker_transport_options"]
    assert options["sentinel_kwargs"]["password"] == "s3nt1nel"
