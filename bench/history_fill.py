"""A job database grown old: `jobs` and `job_runs` filled in one statement each, and their sizes.

The rows look like a month of a busy deployment's history: 99 % of the jobs finished
(COMPLETED, one in twenty FAILED), the rest SCHEDULED in the next 30 days or RUNNING with a
live lease; one job in ten RECURRING, owning every run beyond each job's first; tasks `http`,
`sleep`, `send_email` and `noop`; ids as the job API makes them (`job_<uuid>`, in random
order). Every timestamp but the open ones lies in the `HISTORY_DAYS` before now, spread evenly,
so the default 30-day retention finds the oldest sixth of the runs to delete.
PostgreSQL only (benchmark tooling: the SQL lives here, not in the job store).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, text

HISTORY_DAYS = 36
RECURRING_EVERY = 10  # one job in ten is RECURRING

# Expressions of the job number {n} (1..:jobs), shared by both statements so that a run names
# its job's id, status and task.
_JOB_ID = "'job_' || md5('growth-' || {n})::uuid::text"
_STATUS = (
    "CASE WHEN {n} % 1000 = 1 THEN 'RUNNING' WHEN {n} % 100 = 1 THEN 'SCHEDULED'"
    " WHEN {n} % 20 = 3 THEN 'FAILED' ELSE 'COMPLETED' END"
)
_TASK = "(ARRAY['http', 'sleep', 'send_email', 'noop'])[{n} % 4 + 1]"
# When the job was created and its first run was due: spread evenly, oldest first.
_CREATED = ":base + make_interval(secs => :span_s * {n}::float8 / :jobs)"

_FILL_JOBS = f"""
INSERT INTO jobs (job_id, job_type, execution_mode, cron_expression, payload, status, attempts,
                  failure_reason, failed_at, next_run_at, created_at, updated_at, created_by)
SELECT job_id, job_type,
       CASE WHEN job_type = 'ONE_TIME' THEN 'IMMEDIATE' END,
       CASE WHEN job_type = 'RECURRING' THEN '0 */15 * * * *' END,
       CASE task
           WHEN 'http' THEN jsonb_build_object(
               'task', task, 'url', 'https://hooks.example.com/orders/' || n,
               'method', 'POST', 'body', jsonb_build_object('order', n, 'event', 'shipped'))
           WHEN 'sleep' THEN jsonb_build_object('task', task, 'seconds', 0.2)
           WHEN 'send_email' THEN jsonb_build_object(
               'task', task, 'to', 'customer' || n || '@example.com',
               'subject', 'Your weekly report')
           ELSE jsonb_build_object('task', task)
       END,
       status, 1,
       CASE WHEN status = 'FAILED' THEN 'http 503 from https://hooks.example.com' END,
       CASE WHEN status = 'FAILED' THEN created + interval '2 seconds' END,
       CASE status
           WHEN 'SCHEDULED' THEN :now + make_interval(hours => n % 720)
           WHEN 'RUNNING' THEN :now - interval '2 minutes'
           ELSE created
       END,
       created,
       CASE WHEN status = 'RUNNING' THEN :now - interval '2 minutes'
            ELSE created + interval '2 seconds' END,
       'job-api'
FROM (
    SELECT n, {_JOB_ID.format(n="n")} AS job_id, {_STATUS.format(n="n")} AS status,
           {_TASK.format(n="n")} AS task, {_CREATED.format(n="n")} AS created,
           CASE WHEN n % {RECURRING_EVERY} = 0 THEN 'RECURRING' ELSE 'ONE_TIME' END AS job_type
    FROM generate_series(1, :jobs) AS n
) AS j
"""

# Run i: i <= :jobs is job i's first try (slot 0, at the job's next_run_at); the others go to
# the recurring jobs in turn, slot s of S spread over the history (distinct per job: s * span/S
# modulo the span is never 0 for 0 < s < S). A RUNNING job's first try is its current one:
# unfinished, leased for a day, so neither the sweeper nor a rescuer takes it.
_FILL_RUNS = f"""
INSERT INTO job_runs (job_id, run_at, attempt, worker, status, started_at, lease_expires_at,
                      finished_at, error, task)
SELECT {_JOB_ID.format(n="n")}, run_at, 1,
       'jobexec-' || (i % 8) || '@worker-' || (n % 4),
       run_status, run_at + interval '50 milliseconds',
       CASE WHEN run_status = 'RUNNING' THEN :now + interval '1 day'
            ELSE run_at + interval '60 seconds' END,
       CASE WHEN run_status <> 'RUNNING' THEN run_at + interval '1200 milliseconds' END,
       CASE WHEN run_status = 'FAILED'
            THEN 'HTTPStatusError: 503 Service Unavailable from https://hooks.example.com' END,
       {_TASK.format(n="n")}
FROM (
    SELECT i, n,
           CASE
               WHEN slot = 0 AND {_STATUS.format(n="n")} = 'RUNNING'
                   THEN :now - interval '2 minutes'
               WHEN slot = 0 THEN {_CREATED.format(n="n")}
               ELSE :base + make_interval(secs => mod(
                   (:span_s * n::numeric / :jobs + slot * CAST(:span_s AS numeric) / :slots),
                   CAST(:span_s AS numeric))::float8)
           END AS run_at,
           CASE
               WHEN slot = 0 AND {_STATUS.format(n="n")} = 'RUNNING' THEN 'RUNNING'
               WHEN slot = 0 AND {_STATUS.format(n="n")} = 'FAILED' THEN 'FAILED'
               WHEN i % 33 = 0 THEN 'FAILED'
               ELSE 'SUCCEEDED'
           END AS run_status
    FROM (
        SELECT i,
               CASE WHEN i <= :jobs THEN i
                    ELSE {RECURRING_EVERY} * ((i - :jobs - 1) % :recurring + 1) END AS n,
               CASE WHEN i <= :jobs THEN 0 ELSE (i - :jobs - 1) / :recurring + 1 END AS slot
        FROM generate_series(1, :runs) AS i
    ) AS numbered
) AS r
"""


@dataclass(frozen=True, slots=True)
class Filled:
    jobs: int
    runs: int
    seconds: float  # both inserts, the VACUUM ANALYZE and the checkpoint


def fill(engine: Engine, jobs: int, runs: int) -> Filled:
    """Add `jobs` jobs and `runs` tries to an empty schema, then VACUUM ANALYZE both tables (a
    table that old has its statistics and visibility map: the planner sees what production
    sees, and autovacuum does not start in the middle of a measurement) and CHECKPOINT."""
    recurring = jobs // RECURRING_EVERY
    if recurring < 1 or runs < jobs:
        raise ValueError("need at least ten jobs and a run per job")
    slots = -(-(runs - jobs) // recurring) + 1
    began = time.monotonic()
    with engine.begin() as conn:
        now = conn.execute(text("SELECT now()")).scalar_one()
        span_s = HISTORY_DAYS * 86400
        params: dict[str, Any] = {
            "now": now,
            "base": now - timedelta(hours=1, seconds=span_s),  # history ends an hour ago
            "span_s": span_s,
            "jobs": jobs,
            "runs": runs,
            "recurring": recurring,
            "slots": slots,
        }
        conn.execute(text("SET LOCAL synchronous_commit = off"))
        conn.execute(text(_FILL_JOBS), params)
        conn.execute(text(_FILL_RUNS), params)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE) jobs, job_runs"))
        # The fill's dirty pages written now, not by a checkpoint during the measurement.
        conn.execute(text("CHECKPOINT"))
    return Filled(jobs, runs, time.monotonic() - began)


_INDEX_SIZES = """
SELECT c.relname AS name, i.indrelid::regclass::text AS table_name,
       pg_relation_size(c.oid) AS bytes
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid IN ('jobs'::regclass, 'job_runs'::regclass)
ORDER BY table_name, name
"""


def sizes(engine: Engine) -> dict[str, dict[str, int]]:
    """Bytes of each table (`total` with indexes and TOAST, `heap`, `indexes`) and of each of
    its indexes, by name."""
    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for table in ("jobs", "job_runs"):
            row = conn.execute(
                text(
                    "SELECT pg_total_relation_size(CAST(:t AS regclass)) AS total,"
                    " pg_relation_size(CAST(:t AS regclass)) AS heap,"
                    " pg_indexes_size(CAST(:t AS regclass)) AS indexes"
                ),
                {"t": table},
            ).one()
            out[table] = {"total": row.total, "heap": row.heap, "indexes": row.indexes}
        for row in conn.execute(text(_INDEX_SIZES)):
            out[row.table_name][row.name] = row.bytes
    return out
