"""`jobexec jobs submit|list|show|cancel|pause|resume|retry`: the jobs table, as an operator
works with it.

`submit` inserts a row as the job API does (status SCHEDULED, attempts 0); `jobexec scheduler`
dispatches it when it is due. `cancel`, `pause`, `resume` and `retry` change a row only if it
still has the status they checked, so a worker finishing meanwhile is never overwritten.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError

from jobexec.cli.commands import (
    CommandError,
    bad_input,
    command,
    load_settings,
    open_store,
    say,
)
from jobexec.core.config import Settings
from jobexec.core.cron import InvalidCron, next_fire_time
from jobexec.core.db.admin import JobAdmin
from jobexec.core.db.states import JobStatus, JobType
from jobexec.core.db.store import JobStore
from jobexec.core.masking import mask_text, mask_value
from jobexec.core.printable import printable

# A run may be in flight: cancelling tells its running try to stop.
IN_FLIGHT = frozenset({JobStatus.RUNNING, JobStatus.DISPATCHED})
FINAL = frozenset({JobStatus.COMPLETED, JobStatus.CANCELLED})
REASON_WIDTH = 60
ID_LIMIT = 255  # jobs.job_id is varchar(255)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `jobs` and its sub-commands to the `jobexec` parser."""
    jobs = subparsers.add_parser(
        "jobs",
        help="submit, list, show, cancel, pause, resume and retry jobs",
        description="Work with the jobs table (needs configs.jobDb.url).",
    )
    sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="COMMAND")

    submit = sub.add_parser(
        "submit",
        help="add a job: one-time now (default), one-time at a time (--at) or recurring (--cron)",
        description="Insert a SCHEDULED job; `jobexec scheduler` dispatches it when due. "
        "Prints the job id.",
    )
    submit.add_argument("--task", required=True, help="executor task name, put into payload.task")
    submit.add_argument(
        "--payload",
        default="{}",
        metavar="JSON",
        help="the payload, a JSON object, or @FILE to read it from a file [{}]",
    )
    when = submit.add_mutually_exclusive_group()
    when.add_argument(
        "--at",
        metavar="ISO8601",
        help="run once at this time (no offset means UTC); default: run once now",
    )
    when.add_argument(
        "--cron",
        metavar="EXPR",
        help="recurring: 6-field Spring (seconds first) or 5-field Unix cron, UTC",
    )
    submit.add_argument("--id", dest="job_id", help="job id [job_<uuid4>]")
    submit.add_argument("--created-by", default="jobexec-cli", help="created_by [jobexec-cli]")
    submit.set_defaults(func=cmd_submit)

    listing = sub.add_parser(
        "list", help="list jobs, next run first", description="List jobs, next run first."
    )
    listing.add_argument(
        "--status",
        action="append",
        default=[],
        metavar="STATUS",
        help="only this status (repeat or comma-separate for several): " + ", ".join(JobStatus),
    )
    listing.add_argument(
        "--type", action="append", default=[], metavar="TYPE", help="ONE_TIME or RECURRING"
    )
    listing.add_argument("--limit", type=int, default=100, help="at most this many rows [100]")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    listing.set_defaults(func=cmd_list)

    show = sub.add_parser("show", help="a job and its run history")
    show.add_argument("job_id", metavar="JOB_ID")
    show.add_argument("--json", action="store_true", help="one JSON object: job and runs")
    show.set_defaults(func=cmd_show)

    cancel = sub.add_parser(
        "cancel",
        help="cancel a SCHEDULED, PAUSED, RUNNING or FAILED job",
        description="Set a job CANCELLED at once. Of a RUNNING job, the running try is told to "
        "stop: it is stopped within configs.executors.cancel-grace-ms, its process ended (or "
        "the try abandoned) where it does not stop, and no further try runs.",
    )
    cancel.add_argument("job_id", metavar="JOB_ID")
    cancel.add_argument(
        "--force", action="store_true", help="accepted for compatibility; no longer needed"
    )
    cancel.set_defaults(func=cmd_cancel)

    pause = sub.add_parser(
        "pause",
        help="pause a SCHEDULED job",
        description="Set a SCHEDULED job PAUSED: no scheduler dispatches it until it is resumed.",
    )
    pause.add_argument("job_id", metavar="JOB_ID")
    pause.set_defaults(func=cmd_pause)

    resume = sub.add_parser(
        "resume",
        help="resume a PAUSED job",
        description="Set a PAUSED job SCHEDULED again: a recurring job at its next fire time "
        "after now (missed fires are not replayed), a one-time job at its own next_run_at.",
    )
    resume.add_argument("job_id", metavar="JOB_ID")
    resume.set_defaults(func=cmd_resume)

    retry = sub.add_parser(
        "retry",
        help="re-dispatch a FAILED job",
        description="Set a FAILED job SCHEDULED, attempts 0, next run now, and clear its "
        "failure_reason and failed_at (the run history keeps them); the scheduler dispatches it.",
    )
    retry.add_argument("job_id", metavar="JOB_ID")
    retry.set_defaults(func=cmd_retry)


# --- submit ---------------------------------------------------------------------------------


def parse_payload(text: str) -> dict[str, Any]:
    """The --payload value: a JSON object, inline or `@FILE`."""
    source = "--payload"
    if text.startswith("@"):
        path = Path(text[1:])
        source = f"--payload file {path}"
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise bad_input(f"{source} cannot be read: {exc.__class__.__name__}") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad_input(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise bad_input(f"{source} must be a JSON object, not a JSON {_json_kind(payload)}")
    return payload


def parse_at(text: str) -> datetime:
    """An ISO-8601 time; without an offset it is UTC."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise bad_input(f"--at {text!r} is not an ISO-8601 time (2030-01-31T09:00:00Z)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def build_job(
    task: str,
    payload: dict[str, Any],
    at: datetime | None,
    cron: str | None,
    job_id: str | None,
    created_by: str,
    now: datetime,
) -> dict[str, Any]:
    """The jobs row of a submitted job, as the job API writes it (insert_jobs fills the rest)."""
    if "task" in payload and payload["task"] != task:
        raise bad_input(f"--payload has task {payload['task']!r} but --task is {task!r}")
    job_id = job_id if job_id is not None else f"job_{uuid.uuid4()}"
    if not job_id.strip() or len(job_id) > ID_LIMIT:
        raise bad_input(f"--id must be 1 to {ID_LIMIT} characters")
    if not created_by.strip():
        raise bad_input("--created-by must not be empty")
    row: dict[str, Any] = {
        "job_id": job_id,
        "payload": {**payload, "task": task},
        "status": JobStatus.SCHEDULED,
        "attempts": 0,
        "created_by": created_by,
    }
    if cron is not None:
        try:
            next_run = next_fire_time(cron, now)
        except InvalidCron as exc:
            raise bad_input(f"invalid --cron: {exc}") from None
        return row | {
            "job_type": JobType.RECURRING,
            "cron_expression": cron.strip(),
            "next_run_at": next_run,
        }
    if at is not None:
        return row | {
            "job_type": JobType.ONE_TIME,
            "execution_mode": "SCHEDULED",
            "next_run_at": at,
        }
    return row | {"job_type": JobType.ONE_TIME, "execution_mode": "IMMEDIATE", "next_run_at": now}


@command
def cmd_submit(args: argparse.Namespace) -> int:
    payload = parse_payload(args.payload)
    at = parse_at(args.at) if args.at is not None else None
    # Every input checked before any connection, so bad input is reported as such.
    build_job(args.task, payload, at, args.cron, args.job_id, args.created_by, _utcnow())
    settings = load_settings()
    _check_task(args.task, settings)
    store = open_store(settings)
    try:
        row = build_job(
            args.task, payload, at, args.cron, args.job_id, args.created_by, store.db_now()
        )
        try:
            store.insert_jobs([row])
        except IntegrityError:
            raise CommandError(f"job {row['job_id']} already exists") from None
    finally:
        store.engine.dispose()
    if at is not None and at < datetime.now(UTC):
        say(f"--at {at.isoformat()} is in the past: the job is due at once")
    print(row["job_id"])
    return 0


def _check_task(task: str, settings: Settings) -> None:
    from executors.registry import load_registry

    try:
        registry = load_registry(settings)
    except Exception as exc:  # a broken plugin: configuration, not the operator's input
        raise bad_input(f"cannot load the executors: {exc}") from None
    try:
        known = registry.tasks
    finally:
        registry.close()
    if task not in known:
        raise bad_input(f"unknown task {task!r}; known tasks: {', '.join(known)}")


# --- list and show --------------------------------------------------------------------------


def parse_choices(values: Sequence[str], choices: Sequence[str], option: str) -> list[str]:
    """Repeated or comma-separated values, case-insensitive, `one-time` as `ONE_TIME`."""
    chosen: list[str] = []
    for value in values:
        for part in value.split(","):
            name = part.strip().upper().replace("-", "_")
            if not name:
                continue
            if name not in choices:
                raise bad_input(f"{option} {part.strip()!r} is not one of {', '.join(choices)}")
            chosen.append(name)
    return chosen


@command
def cmd_list(args: argparse.Namespace) -> int:
    statuses = parse_choices(args.status, list(JobStatus), "--status")
    types = parse_choices(args.type, list(JobType), "--type")
    if args.limit < 1:
        raise bad_input("--limit must be positive")
    store = open_store(load_settings())
    try:
        rows = JobAdmin(store).list_jobs(statuses, types, args.limit + 1)
    finally:
        store.engine.dispose()
    more = len(rows) > args.limit
    rows = rows[: args.limit]
    if args.json:
        for row in rows:
            print(_json(mask_value(row)))
    else:
        print_table(
            ["JOB ID", "TYPE", "STATUS", "ATTEMPTS", "NEXT RUN (UTC)", "FAILURE"],
            [
                [
                    r["job_id"],
                    r["job_type"],
                    r["status"],
                    str(r["attempts"]),
                    _time(r["next_run_at"]),
                    _truncate(mask_text(r["failure_reason"] or ""), REASON_WIDTH),
                ]
                for r in rows
            ],
        )
    if more:
        say(f"showing the first {args.limit} jobs; use --limit for more")
    return 0


@command
def cmd_show(args: argparse.Namespace) -> int:
    store = open_store(load_settings())
    try:
        row = store.job_row(args.job_id)
        if row is None:
            raise CommandError(f"no job {args.job_id}")
        runs = store.runs(args.job_id)
    finally:
        store.engine.dispose()
    row, runs = mask_value(row), mask_value(runs)
    if args.json:
        print(_json({"job": row, "runs": runs}))
        return 0
    width = max(len(k) for k in row) + 1
    for key, value in row.items():
        shown = json.dumps(value, sort_keys=True) if key == "payload" else _value(value)
        print(f"{key + ':':<{width}} {printable(shown)}")
    print()
    if not runs:
        print("no runs yet")
        return 0
    print_table(
        ["RUN AT (UTC)", "ATTEMPT", "WORKER", "STATUS", "STARTED", "FINISHED", "ERROR"],
        [
            [
                _time(r["run_at"]),
                str(r["attempt"]),
                r["worker"] or "",
                r["status"],
                _time(r["started_at"]),
                _time(r["finished_at"]),
                _truncate(r["error"], REASON_WIDTH),
            ]
            for r in runs
        ],
    )
    return 0


# --- cancel and retry -----------------------------------------------------------------------


@command
def cmd_cancel(args: argparse.Namespace) -> int:
    store = open_store(load_settings())
    try:
        return _cancel(store, args.job_id)
    finally:
        store.engine.dispose()


def _cancel(store: JobStore, job_id: str) -> int:
    row = store.job_row(job_id)
    if row is None:
        raise CommandError(f"no job {job_id}")
    status = row["status"]
    if status in FINAL:
        raise CommandError(f"job {job_id} is already {status}, which is final")
    change = JobAdmin(store).cancel(job_id, status)
    if not change.applied:
        raise CommandError(f"job {job_id} changed meanwhile (now {change.status}); try again")
    note = "; its running try is told to stop" if status in IN_FLIGHT else ""
    print(f"job {job_id} cancelled (was {status}{note})")
    return 0


@command
def cmd_pause(args: argparse.Namespace) -> int:
    store = open_store(load_settings())
    try:
        row = _row_in(store, args.job_id, JobStatus.SCHEDULED, "paused")
        change = JobAdmin(store).pause(args.job_id)
    finally:
        store.engine.dispose()
    if not change.applied:
        raise CommandError(f"job {args.job_id} changed meanwhile (now {change.status}); try again")
    print(f"job {args.job_id} paused (was {row['status']})")
    return 0


@command
def cmd_resume(args: argparse.Namespace) -> int:
    store = open_store(load_settings())
    try:
        row = _row_in(store, args.job_id, JobStatus.PAUSED, "resumed")
        cron = row["cron_expression"] if row["job_type"] == JobType.RECURRING else None
        try:
            change = JobAdmin(store).resume(args.job_id, cron)
        except InvalidCron as exc:
            raise CommandError(f"job {args.job_id} stays PAUSED: {exc}") from None
        resumed = store.job_row(args.job_id) if change.applied else None
    finally:
        store.engine.dispose()
    if resumed is None:
        raise CommandError(f"job {args.job_id} changed meanwhile (now {change.status}); try again")
    print(f"job {args.job_id} resumed, next run {_time(resumed['next_run_at'])} UTC")
    return 0


def _row_in(store: JobStore, job_id: str, status: str, done: str) -> dict[str, Any]:
    """The job's row if it has `status`; otherwise one line naming the state it is in."""
    row = store.job_row(job_id)
    if row is None:
        raise CommandError(f"no job {job_id}")
    if row["status"] != status:
        raise CommandError(f"job {job_id} is {row['status']}: only a {status} job can be {done}")
    return row


@command
def cmd_retry(args: argparse.Namespace) -> int:
    store = open_store(load_settings())
    try:
        row = store.job_row(args.job_id)
        if row is None:
            raise CommandError(f"no job {args.job_id}")
        if row["status"] != JobStatus.FAILED:
            raise CommandError(
                f"job {args.job_id} is {row['status']}: only a FAILED job can be retried"
            )
        change = JobAdmin(store).retry(args.job_id)
    finally:
        store.engine.dispose()
    if not change.applied:
        raise CommandError(f"job {args.job_id} changed meanwhile (now {change.status}); try again")
    reason = f": {printable(mask_text(row['failure_reason']))}" if row["failure_reason"] else ""
    print(f"job {args.job_id} scheduled again, due now (was FAILED{reason})")
    return 0


# --- output ---------------------------------------------------------------------------------


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Aligned columns; every cell escaped, as it may hold text from the database."""
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    for line in (header, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def _truncate(text: str | None, width: int) -> str:
    if not text:
        return ""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= width else one_line[: width - 3] + "..."


def _json(value: Any) -> str:
    def default(obj: object) -> str:
        if isinstance(obj, datetime):
            return obj.astimezone(UTC).isoformat()
        raise TypeError(f"{type(obj).__name__} is not JSON")

    return json.dumps(value, default=default, sort_keys=True)


def _json_kind(value: object) -> str:
    names = {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
