"""The job database an operation works on, opened for the operation and disposed after it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from jobexec.core.config import Settings
from jobexec.core.db.engine import database_url, make_engine
from jobexec.core.db.store import JobStore


@contextmanager
def job_store(settings: Settings) -> Iterator[JobStore]:
    """A JobStore on `configs.jobDb.url` (ConfigError when it is not set); its connection pool
    is closed on leaving, so a short command leaves no connection behind."""
    store = JobStore(make_engine(database_url(settings)))
    try:
        yield store
    finally:
        store.engine.dispose()
