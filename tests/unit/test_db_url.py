"""The job database URL: JDBC or SQLAlchemy form, credentials from the secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from jobexec.core.config import ConfigError, Settings
from jobexec.core.db.engine import database_url, make_engine, masked


def settings(url: str, **extra: str) -> Settings:
    return Settings.load({"CONFIGS_JOBDB_URL": url, **extra})


def rendered(url: str, **extra: str) -> str:
    return database_url(settings(url, **extra)).render_as_string(hide_password=False)


# --- JDBC --------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["jdbc:postgresql://host:5432/", "jdbc:postgresql://host:5432"])
def test_jdbc_url_without_database_gets_the_configured_name(url: str) -> None:
    assert rendered(url) == "postgresql+psycopg://host:5432/jobs"
    assert rendered(url, CONFIGS_JOBDB_NAME="scheduler") == (
        "postgresql+psycopg://host:5432/scheduler"
    )


def test_jdbc_url_with_database_keeps_it() -> None:
    url = database_url(settings("jdbc:postgresql://host:5432/orders", CONFIGS_JOBDB_NAME="x"))

    assert url.database == "orders"


def test_jdbc_user_and_password_parameters_become_credentials() -> None:
    url = database_url(settings("jdbc:postgresql://h:5432/db?user=u&password=p&sslmode=require"))

    assert url.drivername == "postgresql+psycopg"
    assert url.username == "u"
    assert url.password == "p"
    assert url.host == "h"
    assert url.port == 5432
    assert url.database == "db"
    assert dict(url.query) == {"sslmode": "require"}


def test_jdbc_url_takes_credentials_from_the_secrets() -> None:
    url = database_url(
        settings(
            "jdbc:postgresql://db.internal:5432/",
            SECRETS_DATASOURCE_USERNAME="svc",
            SECRETS_DATASOURCE_PASSWORD="p@ss:w/rd",
        )
    )

    assert (url.username, url.password, url.database) == ("svc", "p@ss:w/rd", "jobs")


def test_jdbc_credentials_win_over_the_secrets() -> None:
    url = database_url(
        settings(
            "jdbc:postgresql://h:5432/db?user=u&password=p",
            SECRETS_DATASOURCE_USERNAME="other",
            SECRETS_DATASOURCE_PASSWORD="other-pw",
        )
    )

    assert (url.username, url.password) == ("u", "p")


def test_driver_class_name_is_accepted_and_ignored(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.properties"
    secrets.write_text(
        "secrets.datasource.driver-class-name=org.postgresql.Driver\n"
        "secrets.datasource.username=u\n",
        encoding="utf-8",
    )

    url = database_url(
        Settings.load(
            {"EXECUTOR_CONFIG_LOCATION": str(secrets), "CONFIGS_JOBDB_URL": "jdbc:postgresql://h/"}
        )
    )

    assert url.username == "u"


# --- SQLAlchemy URLs ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_plain_postgresql_url_uses_psycopg(scheme: str) -> None:
    assert rendered(f"{scheme}://u:p@h:5432/db") == "postgresql+psycopg://u:p@h:5432/db"


def test_explicit_driver_is_kept() -> None:
    assert rendered("postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"


def test_sqlalchemy_url_takes_credentials_from_the_secrets() -> None:
    url = database_url(
        settings(
            "postgresql://h:5432/db",
            SECRETS_DATASOURCE_USERNAME="svc",
            SECRETS_DATASOURCE_PASSWORD="s3cret",
        )
    )

    assert (url.username, url.password) == ("svc", "s3cret")


def test_credentials_in_the_url_win_over_the_secrets() -> None:
    url = database_url(
        settings(
            "postgresql://u:p@h/db",
            SECRETS_DATASOURCE_USERNAME="svc",
            SECRETS_DATASOURCE_PASSWORD="s3cret",
        )
    )

    assert (url.username, url.password) == ("u", "p")


def test_sqlite_url_is_kept() -> None:
    assert rendered("sqlite:///x.db") == "sqlite:///x.db"


def test_sqlite_url_stays_usable_when_database_credentials_are_configured(tmp_path: Path) -> None:
    # Given production secrets and a SQLite override (as a developer runs it)
    path = tmp_path / "jobs.db"
    url = database_url(
        settings(
            f"sqlite:///{path}",
            SECRETS_DATASOURCE_USERNAME="svc",
            SECRETS_DATASOURCE_PASSWORD="s3cret",
        )
    )

    # Then the URL still names the file, and an engine made from it connects
    assert url.database == str(path)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("select 1")).scalar() == 1
    finally:
        engine.dispose()


# --- JDBC: several hosts and parameters ---------------------------------------------------------


def test_jdbc_url_with_several_hosts_becomes_repeated_host_parameters() -> None:
    url = database_url(
        settings("jdbc:postgresql://db1:5432,db2:6543,db3/jobs?targetServerType=primary")
    )

    assert url.host is None
    assert url.database == "jobs"
    assert url.query["host"] == ("db1:5432", "db2:6543", "db3:5432")
    assert url.query["target_session_attrs"] == "primary"


@pytest.mark.parametrize(
    ("jdbc", "libpq"),
    [
        ("any", "any"),
        ("primary", "primary"),
        ("master", "primary"),
        ("secondary", "standby"),
        ("standby", "standby"),
        ("preferSecondary", "prefer-standby"),
        ("preferPrimary", "any"),
    ],
)
def test_target_server_type_maps_to_target_session_attrs(jdbc: str, libpq: str) -> None:
    url = database_url(settings(f"jdbc:postgresql://a:1,b:2/db?targetServerType={jdbc}"))

    assert url.query["target_session_attrs"] == libpq


def test_common_jdbc_parameters_map_to_libpq_names() -> None:
    url = database_url(
        settings(
            "jdbc:postgresql://h:5432/db?ssl=true&currentSchema=app,public"
            "&ApplicationName=orders-jobexec&connectTimeout=7"
        )
    )

    assert dict(url.query) == {
        "sslmode": "verify-full",
        "options": "-c search_path=app,public",
        "application_name": "orders-jobexec",
        "connect_timeout": "7",
    }


@pytest.mark.parametrize(
    ("query", "sslmode"),
    [
        ("ssl=true&sslmode=require", "require"),
        ("sslmode=require&ssl=true", "require"),
        ("ssl=false", "disable"),
        ("sslmode=verify-ca", "verify-ca"),
    ],
)
def test_explicit_sslmode_wins_over_ssl(query: str, sslmode: str) -> None:
    url = database_url(settings(f"jdbc:postgresql://h:5432/db?{query}"))

    assert url.query["sslmode"] == sslmode


def test_other_jdbc_parameters_are_ignored_with_a_warning_naming_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = database_url(
        settings("jdbc:postgresql://h:5432/db?prepareThreshold=0&reWriteBatchedInserts=true&ssl=1")
    )

    assert dict(url.query) == {"sslmode": "verify-full"}
    warnings = [r for r in caplog.records if getattr(r, "action", "") == "jdbc_parameters_ignored"]
    assert len(warnings) == 1
    assert "prepareThreshold, reWriteBatchedInserts" in warnings[0].getMessage()


def test_jdbc_ipv6_host_keeps_its_brackets_out_of_the_host() -> None:
    url = database_url(settings("jdbc:postgresql://[::1]:5433/db"))

    assert (url.host, url.port) == ("::1", 5433)


def test_multi_host_url_is_masked_without_its_password() -> None:
    url = database_url(settings("jdbc:postgresql://a:1,b:2/db?user=u&password=hunter2"))

    assert "hunter2" not in masked(url)
    assert "host=a%3A1&host=b%3A2" in masked(url)


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:hunter2@h/db",
        "mysql+pymysql://h/db",
        "jdbc:mysql://h:3306/db?password=hunter2",
        "jdbc:sqlserver://h:1433",
        "not a url hunter2",
    ],
)
def test_unsupported_url_is_a_config_error_naming_the_key(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        database_url(settings(url))

    message = str(caught.value)
    assert "configs.jobDb.url" in message
    assert "CONFIGS_JOBDB_URL" in message
    assert "hunter2" not in message


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:hunter2@h:port/db",
        "jdbc:postgresql://h:54x2/db?password=hunter2",
        "jdbc:postgresql://h1:5432,h2:99999/db?password=hunter2",
    ],
)
def test_url_with_unparseable_port_is_a_config_error_naming_the_key(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        database_url(settings(url))

    assert "configs.jobDb.url" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_missing_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"configs\.jobDb\.url is missing"):
        database_url(Settings.load({}))


# --- masking -----------------------------------------------------------------------------------


def test_masked_url_hides_the_password() -> None:
    url = database_url(settings("jdbc:postgresql://h:5432/db?user=u&password=hunter2"))

    text = masked(url)

    assert "hunter2" not in text
    assert text == "postgresql+psycopg://u:***@h:5432/db"


def test_masked_url_without_password_is_unchanged() -> None:
    assert masked(database_url(settings("sqlite:///x.db"))) == "sqlite:///x.db"
