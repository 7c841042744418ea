"""A JDBC URL with several hosts reaches the real PostgreSQL past a host that is down."""

from __future__ import annotations

from sqlalchemy import make_url, text

from jobexec.core.config import Settings
from jobexec.core.db.engine import database_url, make_engine
from jobexec.testing.network import free_port


def test_given_a_two_host_jdbc_url_whose_first_host_is_down_then_it_connects_to_the_second(
    pg_url: str,
) -> None:
    target = make_url(pg_url)
    with make_engine(target).begin() as conn:
        conn.execute(text("CREATE SCHEMA app"))
    closed = free_port()  # nothing listens there: the first host refuses the connection
    jdbc = (
        f"jdbc:postgresql://127.0.0.1:{closed},{target.host}:{target.port}/{target.database}"
        "?user=postgres&targetServerType=primary&currentSchema=app"
        "&ApplicationName=jobexec-multihost&connectTimeout=5&sslmode=disable"
    )
    engine = make_engine(database_url(Settings.load({"CONFIGS_JOBDB_URL": jdbc})))
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT inet_server_port(), current_schema(), "
                    "current_setting('application_name'), pg_is_in_recovery()"
                )
            ).one()
    finally:
        engine.dispose()

    assert tuple(row) == (target.port, "app", "jobexec-multihost", False)
