"""The console's read queries: keyset pages of `jobs` and a job's latest tries.

Pages are ordered by (next_run_at, job_id) and read through the `(status, next_run_at)` index
that the scheduler's claim uses: one index range per status, merged (a skip scan written out),
so a page costs the same on the first page and the ten-thousandth, on a table of any size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select, union_all

from jobexec.core.db.schema import job_runs, jobs
from jobexec.core.db.states import JobStatus

_LIST_COLUMNS = (
    jobs.c.job_id,
    jobs.c.job_type,
    jobs.c.status,
    jobs.c.attempts,
    jobs.c.next_run_at,
    jobs.c.failure_reason,
    jobs.c.payload["task"].as_string().label("task"),
)


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What the operator asked for; empty means any."""

    statuses: tuple[str, ...] = ()
    job_types: tuple[str, ...] = ()
    task: str = ""
    id_prefix: str = ""


@dataclass(frozen=True, slots=True)
class Cursor:
    """The last row of a page: the next page starts after it."""

    next_run_at: datetime
    job_id: str


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]] = field(default_factory=list)
    next: Cursor | None = None  # None: this is the last page


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class JobBrowser:
    """Read-only queries behind the console's pages."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def jobs_page(self, wanted: JobFilter, after: Cursor | None, size: int) -> Page:
        """Up to `size` jobs after the cursor, next run first, and the cursor of the next page."""
        conditions: list[Any] = []
        if wanted.job_types:
            conditions.append(jobs.c.job_type.in_(wanted.job_types))
        if wanted.task:
            conditions.append(jobs.c.payload["task"].as_string() == wanted.task)
        if wanted.id_prefix:
            conditions.append(jobs.c.job_id.like(_like_prefix(wanted.id_prefix), escape="\\"))
        if after is not None:
            # `>=` first: it is the index range; the `or` only drops the ties already shown.
            conditions.append(jobs.c.next_run_at >= after.next_run_at)
            conditions.append(
                or_(
                    jobs.c.next_run_at > after.next_run_at,
                    and_(jobs.c.next_run_at == after.next_run_at, jobs.c.job_id > after.job_id),
                )
            )
        order = (jobs.c.next_run_at, jobs.c.job_id)
        per_status = [
            select(*_LIST_COLUMNS)
            .where(jobs.c.status == status, *conditions)
            .order_by(*order)
            .limit(size + 1)
            .subquery()
            for status in (wanted.statuses or tuple(JobStatus))
        ]
        merged = union_all(*(select(*part.c) for part in per_status)).subquery()
        query = select(*merged.c).order_by(merged.c.next_run_at, merged.c.job_id).limit(size + 1)
        with self.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(query).mappings()]
        if len(rows) <= size:
            return Page(rows)
        rows = rows[:size]
        return Page(rows, Cursor(rows[-1]["next_run_at"], rows[-1]["job_id"]))

    def latest_runs(self, job_id: str, limit: int) -> list[dict[str, Any]]:
        """The job's latest `limit` tries, newest first (the job_id, started_at index)."""
        query = (
            select(job_runs)
            .where(job_runs.c.job_id == job_id)
            .order_by(job_runs.c.started_at.desc(), job_runs.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]


def parse_statuses(values: Sequence[str]) -> tuple[str, ...]:
    """The known statuses among `values`, upper-cased, in the order given."""
    known = set(JobStatus)
    return tuple(v.upper() for v in values if v.upper() in known)


class JobTally:
    """Read-only figures over many jobs at once, optionally those whose id starts with a prefix:
    what a benchmark or a fault-injection run checks the whole table with."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def status_counts(self, id_prefix: str = "") -> dict[str, int]:
        """How many jobs are in each status (statuses with no job left out)."""
        query = select(jobs.c.status, func.count()).group_by(jobs.c.status)
        if id_prefix:
            query = query.where(_id_starts_with(id_prefix))
        with self.engine.connect() as conn:
            return {str(status): int(n) for status, n in conn.execute(query).all()}

    def status_counts_among(self, job_ids: Sequence[str]) -> dict[str, int]:
        """How many of these jobs are in each status: one primary-key lookup per id, so the
        cost follows len(job_ids), not the table (a LIKE on the id reads every row unless the
        database's collation is C)."""
        query = (
            select(jobs.c.status, func.count())
            .where(jobs.c.job_id.in_(job_ids))
            .group_by(jobs.c.status)
        )
        with self.engine.connect() as conn:
            return {str(status): int(n) for status, n in conn.execute(query).all()}

    def job_states(self, id_prefix: str = "") -> dict[str, tuple[str, int]]:
        """Job id -> (status, attempts)."""
        query = select(jobs.c.job_id, jobs.c.status, jobs.c.attempts)
        if id_prefix:
            query = query.where(_id_starts_with(id_prefix))
        with self.engine.connect() as conn:
            return {str(j): (str(s), int(a)) for j, s, a in conn.execute(query).all()}

    def updated_at(self, id_prefix: str, statuses: Sequence[str]) -> dict[str, datetime]:
        """Job id -> when its row was last written, for the jobs in one of these statuses."""
        query = select(jobs.c.job_id, jobs.c.updated_at).where(
            _id_starts_with(id_prefix), jobs.c.status.in_(statuses)
        )
        with self.engine.connect() as conn:
            return {str(job_id): at for job_id, at in conn.execute(query).all()}

    def first_run_started_at(self, id_prefix: str) -> datetime | None:
        """When the earliest try of these jobs started (None before any did)."""
        query = select(func.min(job_runs.c.started_at)).where(
            job_runs.c.job_id.like(_like_prefix(id_prefix), escape="\\")
        )
        with self.engine.connect() as conn:
            value: datetime | None = conn.execute(query).scalar_one()
            return value

    def unfinished_runs(self) -> list[dict[str, Any]]:
        """Every try not finished yet: its job_id, attempt and worker."""
        query = select(job_runs.c.job_id, job_runs.c.attempt, job_runs.c.worker).where(
            job_runs.c.finished_at.is_(None)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]


def _id_starts_with(prefix: str) -> Any:
    return jobs.c.job_id.like(_like_prefix(prefix), escape="\\")
