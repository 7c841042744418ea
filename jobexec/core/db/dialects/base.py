"""What differs between PostgreSQL and SQLite in the job store, behind one interface.

The store picks its dialect once, when it is built; its methods hold no dialect checks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Table, Update
from sqlalchemy.sql.dml import Insert

from jobexec.core.db.records import Claim, Dispatch, Job


class Dialect(ABC):
    """The statements and transaction shapes that one database kind needs."""

    name: str

    @abstractmethod
    def clock(self, conn: Connection) -> datetime:
        """The database's now, in UTC."""

    @abstractmethod
    def statement_now(self) -> Any:
        """The database's now as a value inside a statement."""

    @abstractmethod
    def claim(
        self,
        engine: Engine,
        job_id: str,
        attempt: int,
        worker: str,
        lease: timedelta,
        caps: Mapping[str, int],
    ) -> tuple[Job | None, datetime, Claim | None]:
        """Read the job and claim its try if it is the current one (see JobStore.claim)."""

    @abstractmethod
    def write_outcome(self, engine: Engine, finish_run: Update, settle_job: Update) -> bool:
        """Run both updates as one unit; True when `settle_job` changed the job row."""

    @abstractmethod
    def rescue(
        self, engine: Engine, max_attempts: int, limit: int
    ) -> AbstractContextManager[list[Dispatch]]:
        """Lost tries recorded LOST and their next try claimed (see JobStore.rescue)."""

    @abstractmethod
    def pruning_lock(self, engine: Engine) -> AbstractContextManager[bool]:
        """True for the one process allowed to prune history now."""

    @abstractmethod
    def insert_unless_present(self, table: Table) -> Insert:
        """An INSERT into `table` that does nothing when the row's key is already there."""


__all__ = ["Dialect"]
