"""A fresh PostgreSQL database per test on the local server (trust auth, user postgres)."""

from __future__ import annotations

import uuid

import psycopg
from psycopg import sql

SERVER = "postgres@127.0.0.1:5432"
ADMIN_URL = f"postgresql://{SERVER}/postgres"


def create_database(prefix: str = "jobexec_t_") -> str:
    """Create an empty database and return its name."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return name


def drop_database(name: str) -> None:
    """Drop the database, disconnecting whatever still uses it."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def sqlalchemy_url(name: str) -> str:
    return f"postgresql+psycopg://{SERVER}/{name}"


def libpq_url(name: str) -> str:
    """The same database as a plain libpq URL, for psycopg.connect in assertions."""
    return f"postgresql://{SERVER}/{name}"


def server_answers() -> bool:
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True
