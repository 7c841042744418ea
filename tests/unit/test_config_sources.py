"""Spring's configuration sources: `${...}` placeholders, YAML files, `classpath:` locations."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobexec.core.config import ConfigError, Settings


def load(tmp_path: Path, text: str, name: str = "application.properties", **env: str) -> Settings:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return Settings.load({"SPRING_CONFIG_LOCATION": f"file:{path}", **env})


# --- placeholders ------------------------------------------------------------------------------


def test_placeholder_takes_an_environment_variable(tmp_path: Path) -> None:
    settings = load(
        tmp_path, "configs.jobDb.url=jdbc:postgresql://${DB_HOST}:5432/\n", DB_HOST="db.internal"
    )

    assert settings.get("configs.jobDb.url") == "jdbc:postgresql://db.internal:5432/"


def test_placeholder_default_applies_when_nothing_is_set(tmp_path: Path) -> None:
    settings = load(tmp_path, "configs.smtp.host=${SMTP_HOST:mail.local}\n")

    assert settings.get("configs.smtp.host") == "mail.local"


def test_placeholder_default_loses_to_a_set_value(tmp_path: Path) -> None:
    settings = load(tmp_path, "configs.smtp.host=${SMTP_HOST:mail.local}\n", SMTP_HOST="smtp.corp")

    assert settings.get("configs.smtp.host") == "smtp.corp"


def test_placeholder_refers_to_another_setting_of_the_files(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "app.queue-prefix=orders\nconfigs.celery.queue=${app.queue-prefix}-jobs\n",
    )

    assert settings.get("configs.celery.queue") == "orders-jobs"


def test_placeholder_finds_a_dotted_name_in_the_environment_by_spring_rules(
    tmp_path: Path,
) -> None:
    # Spring looks `app.db-host` up as APP_DBHOST and APP_DB_HOST too; the environment wins.
    settings = load(
        tmp_path,
        "app.db-host=from-file\napp.smtp-host=file-smtp\n"
        "configs.jobDb.url=jdbc:postgresql://${app.db-host}/\nconfigs.smtp.host=${app.smtp-host}\n",
        APP_DB_HOST="from-env",
        APP_SMTPHOST="env-smtp",
    )

    assert settings.get("configs.jobDb.url") == "jdbc:postgresql://from-env/"
    assert settings.get("configs.smtp.host") == "env-smtp"


def test_placeholder_sees_the_environment_override_of_a_known_key(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "configs.celery.queue=file-queue\nconfigs.kafka.topic.job-events=${configs.celery.queue}\n",
        CONFIGS_CELERY_QUEUE="env-queue",
    )

    assert settings.get("configs.kafka.topic.job-events") == "env-queue"


def test_placeholders_nest_in_values_and_defaults(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "app.region=eu\napp.env=prod-${app.region}\n"
        "configs.celery.queue=${app.env}-${QUEUE_SUFFIX:${app.region}-default}\n",
    )

    assert settings.get("configs.celery.queue") == "prod-eu-eu-default"


def test_placeholder_may_refer_to_a_default_of_jobexec(tmp_path: Path) -> None:
    settings = load(tmp_path, "configs.kafka.topic.dead-letter=${configs.celery.queue}.dead\n")

    assert settings.dead_letter_topic == "jobs.dead"


def test_escaped_placeholder_stays_literal(tmp_path: Path) -> None:
    settings = load(tmp_path, "configs.smtp.from=\\\\${not-a-placeholder}\n")

    assert settings.get("configs.smtp.from") == "${not-a-placeholder}"


def test_placeholder_in_an_environment_variable_is_resolved_too(tmp_path: Path) -> None:
    settings = load(tmp_path, "", CONFIGS_SMTP_HOST="${SMTP_HOST:relay}")

    assert settings.get("configs.smtp.host") == "relay"


def test_placeholder_in_a_kafka_property_is_resolved(tmp_path: Path) -> None:
    settings = load(
        tmp_path,
        "configs.kafka.bootstrap-servers=k:9092\n"
        "configs.kafka.properties.client.id=${HOSTNAME:local}-bridge\n",
        HOSTNAME="node7",
    )

    assert settings.kafka_client_properties["client.id"] == "node7-bridge"


def test_plugin_key_placeholder_is_resolved_on_lookup(tmp_path: Path) -> None:
    settings = load(tmp_path, "search.api-url=https://${SEARCH_HOST:search.local}/v1\n")

    assert settings.lookup("search.api-url") == "https://search.local/v1"


def test_unused_key_with_an_unresolvable_placeholder_does_not_stop_start_up(
    tmp_path: Path,
) -> None:
    # A file shared with Spring services may hold their placeholders; only used keys must resolve.
    settings = load(tmp_path, "spring.datasource.url=${THEIR_DB_URL}\nconfigs.celery.queue=q\n")

    assert settings.get("configs.celery.queue") == "q"


def test_unresolvable_placeholder_names_key_placeholder_and_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "configs.smtp.host=${SMTP_HOST}\n")

    message = str(caught.value)
    assert "configs.smtp.host" in message
    assert "${SMTP_HOST}" in message
    assert str(tmp_path / "application.properties") in message


def test_a_placeholder_cycle_names_every_key_of_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(
            tmp_path,
            "configs.smtp.host=${app.a}\napp.a=x-${app.b}\napp.b=${configs.smtp.host}\n",
        )

    assert "circular placeholder reference: configs.smtp.host -> app.a -> app.b -> " in str(
        caught.value
    )


def test_a_value_referring_to_itself_is_a_cycle(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"configs.celery.queue -> configs.celery.queue"):
        load(tmp_path, "configs.celery.queue=${configs.celery.queue}\n")


# --- YAML --------------------------------------------------------------------------------------

_YAML = """\
configs:
  jobDb:
    url: jdbc:postgresql://${DB_HOST:localhost}:5432/
  kafka:
    bootstrap-servers: kafka-1:9092
    properties:
      security.protocol: SASL_SSL
  executors:
    http:
      allowed-hosts:
        - api.example.com
        - 169.254.169.254
  retry:
    max-attempts: 5
secrets:
  smtp:
    password: hunter2
"""


def test_yaml_file_is_flattened_as_spring_flattens_it(tmp_path: Path) -> None:
    settings = load(tmp_path, _YAML, name="application.yml", DB_HOST="db1")

    assert settings.get("configs.jobDb.url") == "jdbc:postgresql://db1:5432/"
    assert settings.get("configs.retry.max-attempts") == 5
    assert settings.get("secrets.smtp.password") == "hunter2"
    assert settings.kafka_client_properties["security.protocol"] == "SASL_SSL"


def test_yaml_list_binds_to_a_list_valued_setting_as_its_items(tmp_path: Path) -> None:
    settings = load(tmp_path, _YAML, name="application.yaml")

    assert settings.allowed_hosts == frozenset({"api.example.com", "169.254.169.254"})


def test_yaml_list_items_are_readable_by_index(tmp_path: Path) -> None:
    settings = load(tmp_path, "search:\n  hosts:\n    - a\n    - b\n", name="application.yml")

    assert settings.lookup("search.hosts[1]") == "b"
    assert settings.lookup("search.hosts") == "a,b"


def test_yaml_booleans_and_nulls_read_as_spring_prints_them(tmp_path: Path) -> None:
    settings = load(tmp_path, "plugin:\n  enabled: yes\n  dry-run: false\n  none:\n", name="x.yml")

    assert settings.lookup("plugin.enabled") == "true"
    assert settings.lookup("plugin.dry-run") == "false"
    assert settings.lookup("plugin.none") == ""


def test_yaml_documents_apply_in_order_and_profile_documents_are_skipped(tmp_path: Path) -> None:
    text = (
        "configs:\n  celery:\n    queue: first\n---\nconfigs:\n  celery:\n    queue: second\n"
        "---\nspring:\n  config:\n    activate:\n      on-profile: test\n"
        "configs:\n  celery:\n    queue: test-only\n"
    )

    settings = load(tmp_path, text, name="application.yml")

    assert settings.get("configs.celery.queue") == "second"


def test_later_properties_file_replaces_a_yaml_list(tmp_path: Path) -> None:
    yml = tmp_path / "application.yml"
    yml.write_text(_YAML, encoding="utf-8")
    override = tmp_path / "override.properties"
    override.write_text("configs.executors.http.allowed-hosts[0]=only.example\n", encoding="utf-8")

    settings = Settings.load({"SPRING_CONFIG_LOCATION": f"{yml},{override}"})

    assert settings.allowed_hosts == frozenset({"only.example"})


def test_directory_location_reads_application_yml_under_application_properties(
    tmp_path: Path,
) -> None:
    (tmp_path / "application.yml").write_text(
        "configs:\n  celery:\n    queue: from-yml\n  smtp:\n    host: yml-host\n", encoding="utf-8"
    )
    (tmp_path / "application.properties").write_text(
        "configs.celery.queue=from-properties\n", encoding="utf-8"
    )

    settings = Settings.load({"SPRING_CONFIG_LOCATION": f"file:{tmp_path}/"})

    assert settings.get("configs.celery.queue") == "from-properties"  # Spring: .properties wins
    assert settings.get("configs.smtp.host") == "yml-host"


def test_yaml_that_does_not_parse_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "configs:\n  celery:\n    queue: [unclosed\n  smtp: x\n", name="bad.yml")

    message = str(caught.value)
    assert str(tmp_path / "bad.yml") in message
    assert "not valid YAML at line 4" in message


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a mapping"):
        load(tmp_path, "- just\n- a list\n", name="list.yaml")


# --- classpath: --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location", ["classpath:application.yml", "optional:classpath:/config/", "classpath:/"]
)
def test_classpath_location_asks_for_a_file_path(location: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.load({"SPRING_CONFIG_LOCATION": location})

    message = str(caught.value)
    assert "SPRING_CONFIG_LOCATION" in message
    assert "give a file path" in message


# --- configs.logging.level ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "level"), [("debug", "DEBUG"), ("WARN", "WARNING"), (" error ", "ERROR")]
)
def test_logging_level_takes_springs_names(given: str, level: str) -> None:
    assert Settings.load({"CONFIGS_LOGGING_LEVEL": given}).get("configs.logging.level") == level


def test_logging_level_defaults_to_info() -> None:
    assert Settings.load({}).get("configs.logging.level") == "INFO"


def test_unknown_logging_level_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"configs\.logging\.level is invalid: 'LOUD'"):
        Settings.load({"CONFIGS_LOGGING_LEVEL": "LOUD"})
