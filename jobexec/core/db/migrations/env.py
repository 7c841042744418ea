"""Alembic environment: runs on the connection `jobexec.core.db.migrate.upgrade` hands in."""

from alembic import context

from jobexec.core.db.schema import metadata

connection = context.config.attributes["connection"]
# Own version table name: the neighbouring services may keep their own alembic_version.
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table="jobexec_alembic_version",
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
