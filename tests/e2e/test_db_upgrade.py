"""`jobexec db upgrade`: safe to repeat, and leaves a `jobs` table another service made alone."""

from __future__ import annotations

import psycopg
from sqlalchemy import make_url

from jobexec.testing.config_files import ConfigFiles
from jobexec.testing.processes import Cli

# The jobs table as the neighbouring job API creates it, plus a column of its own.
FOREIGN_JOBS_TABLE = """
CREATE TABLE jobs (
    job_id varchar PRIMARY KEY,
    job_type varchar NOT NULL,
    execution_mode varchar NULL,
    cron_expression varchar NULL,
    payload jsonb NOT NULL,
    status varchar NOT NULL,
    attempts int NOT NULL,
    failure_reason varchar NULL,
    failed_at timestamptz NULL,
    next_run_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    created_by varchar NOT NULL,
    updated_at timestamptz NOT NULL,
    tenant varchar
)
"""


def _libpq(pg_url: str) -> str:
    return make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _columns(pg_url: str, table: str) -> list[str]:
    with psycopg.connect(_libpq(pg_url)) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    return [r[0] for r in rows]


def test_given_an_empty_database_when_upgraded_twice_then_both_succeed(
    cli: Cli, config_files: ConfigFiles, pg_url: str
) -> None:
    env = config_files.write({"configs.jobDb.url": pg_url})

    first = cli.run("db", "upgrade", env=env)
    second = cli.run("db", "upgrade", env=env)

    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert "job_id" in _columns(pg_url, "jobs")
    assert _columns(pg_url, "job_runs")


def test_given_a_jobs_table_made_by_another_service_when_upgraded_then_it_is_left_as_it_was(
    cli: Cli, config_files: ConfigFiles, pg_url: str
) -> None:
    with psycopg.connect(_libpq(pg_url)) as conn:
        conn.execute(FOREIGN_JOBS_TABLE)
        conn.execute(
            "INSERT INTO jobs VALUES ('job_existing', 'ONE_TIME', 'IMMEDIATE', NULL, "
            "'{\"task\": \"noop\"}', 'SCHEDULED', 0, NULL, NULL, now(), now(), 'api', now(), "
            "'acme')"
        )
    before = _columns(pg_url, "jobs")
    env = config_files.write(
        {
            "configs.jobDb.url": "jdbc:postgresql://127.0.0.1:5432/",
            "configs.jobDb.name": str(make_url(pg_url).database),
        },
        {"secrets.datasource.username": "postgres"},
    )

    result = cli.run("db", "upgrade", env=env)
    again = cli.run("db", "upgrade", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert again.returncode == 0, again.stdout + again.stderr
    assert _columns(pg_url, "jobs") == before
    assert "tenant" in _columns(pg_url, "jobs")
    assert _columns(pg_url, "job_runs")
    with psycopg.connect(_libpq(pg_url)) as conn:
        kept = conn.execute("SELECT tenant FROM jobs WHERE job_id = 'job_existing'").fetchall()
    assert kept == [("acme",)]
