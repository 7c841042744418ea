"""The job store's dialects: PostgreSQL in production, SQLite for `jobexec dev` and tests."""

from __future__ import annotations

from sqlalchemy import Engine

from jobexec.core.db.dialects.base import Dialect


def for_engine(engine: Engine) -> Dialect:
    """The dialect of the engine's database (engine.py admits only these two)."""
    if engine.dialect.name == "sqlite":
        from jobexec.core.db.dialects.sqlite import SQLite

        return SQLite()
    from jobexec.core.db.dialects.postgresql import PostgreSQL

    return PostgreSQL()


__all__ = ["Dialect", "for_engine"]
