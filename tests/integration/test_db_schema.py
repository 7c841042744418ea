"""The migrations and schema.py describe one schema: an empty database upgraded to head has
exactly the tables, columns, types, keys and indexes that schema.py declares."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from jobexec.core.db.schema import metadata

VERSION_TABLE = "jobexec_alembic_version"


def _differences(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        return list(compare_metadata(context, metadata))


def _partial_indexes(engine: Engine) -> dict[str, str | None]:
    # compare_metadata does not compare an index's WHERE clause: read it from the database.
    where: dict[str, str | None] = {}
    inspector = inspect(engine)
    for table in metadata.tables:
        for index in inspector.get_indexes(table):
            if index.get("duplicates_constraint"):
                continue  # PostgreSQL's index behind a unique constraint: not an Index
            options = index.get("dialect_options", {})
            clause = options.get("postgresql_where") or options.get("sqlite_where")
            where[str(index["name"])] = None if clause is None else str(clause).strip("() ")
    return where


def _declared_partial_indexes(dialect: str) -> dict[str, str | None]:
    where: dict[str, str | None] = {}
    for table in metadata.tables.values():
        for index in table.indexes:
            clause = index.dialect_options[dialect].get("where")
            where[str(index.name)] = None if clause is None else str(clause)
    return where


def test_an_empty_database_upgraded_to_head_has_the_schema_schema_py_declares(
    store: Any,
) -> None:
    engine = store.engine

    assert _differences(engine) == []
    assert set(inspect(engine).get_table_names()) == {*metadata.tables, VERSION_TABLE}


def test_an_empty_database_upgraded_to_head_has_the_declared_partial_indexes(
    store: Any,
) -> None:
    engine = store.engine

    found = _partial_indexes(engine)

    declared = _declared_partial_indexes(engine.dialect.name)
    assert found == declared
    assert declared["ix_job_runs_unfinished_task"] == "finished_at IS NULL"
