"""Whether the job database answers: a trivial statement on a fresh connection, bounded."""

from __future__ import annotations

from sqlalchemy import URL, create_engine, text
from sqlalchemy.pool import NullPool

_PING = text("SELECT 1")


class DatabaseProbe:
    """Callable: True when the database accepts a connection and answers within `timeout_s`."""

    def __init__(self, url: URL, timeout_s: int) -> None:
        # No pool: every probe opens a new connection, so a database gone away is seen at once.
        connect_args = {"connect_timeout": timeout_s} if url.get_backend_name() != "sqlite" else {}
        self._engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)

    def __call__(self) -> bool:
        try:
            with self._engine.connect() as conn:
                conn.execute(_PING)
        except Exception:  # any failure means no answer; why is the database's to log
            return False
        return True
