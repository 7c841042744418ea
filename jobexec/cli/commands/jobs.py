"""`jobexec jobs submit|list|show|cancel|pause|resume|retry`: the arguments and the output of
the job operations (`jobexec.operations.jobs`), as an operator works with the jobs table."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobexec.cli.commands import bad_input, command, load_settings, say
from jobexec.core.db.states import JobStatus, JobType
from jobexec.core.masking import mask_text, mask_value
from jobexec.core.printable import printable
from jobexec.operations.jobs import JobChange, JobOperations, build_job, check_task, utc_time
from jobexec.operations.store import job_store

REASON_WIDTH = 60


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


@command
def cmd_submit(args: argparse.Namespace) -> int:
    payload = parse_payload(args.payload)
    at = parse_at(args.at) if args.at is not None else None
    job = (args.task, payload, at, args.cron, args.job_id, args.created_by)
    # Every input checked before any connection, so bad input is reported as such.
    build_job(*job, _utcnow())
    settings = load_settings()
    check_task(args.task, settings)
    with job_store(settings) as store:
        job_id = JobOperations(store).submit(*job)
    if at is not None and at < datetime.now(UTC):
        say(f"--at {at.isoformat()} is in the past: the job is due at once")
    print(job_id)
    return 0


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
    with job_store(load_settings()) as store:
        listing = JobOperations(store).list_jobs(statuses, types, args.limit)
    if args.json:
        for row in listing.rows:
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
                    utc_time(r["next_run_at"]),
                    _truncate(mask_text(r["failure_reason"] or ""), REASON_WIDTH),
                ]
                for r in listing.rows
            ],
        )
    if listing.more:
        say(f"showing the first {args.limit} jobs; use --limit for more")
    return 0


@command
def cmd_show(args: argparse.Namespace) -> int:
    with job_store(load_settings()) as store:
        history = JobOperations(store).history(args.job_id)
    row, runs = mask_value(history.job), mask_value(history.runs)
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
                utc_time(r["run_at"]),
                str(r["attempt"]),
                r["worker"] or "",
                r["status"],
                utc_time(r["started_at"]),
                utc_time(r["finished_at"]),
                _truncate(r["error"], REASON_WIDTH),
            ]
            for r in runs
        ],
    )
    return 0


# --- cancel, pause, resume and retry --------------------------------------------------------


def _change(args: argparse.Namespace, action: Callable[[JobOperations, str], JobChange]) -> int:
    with job_store(load_settings()) as store:
        done = action(JobOperations(store), args.job_id)
    print(done.message)
    return 0


@command
def cmd_cancel(args: argparse.Namespace) -> int:
    return _change(args, JobOperations.cancel)


@command
def cmd_pause(args: argparse.Namespace) -> int:
    return _change(args, JobOperations.pause)


@command
def cmd_resume(args: argparse.Namespace) -> int:
    return _change(args, JobOperations.resume)


@command
def cmd_retry(args: argparse.Namespace) -> int:
    return _change(args, JobOperations.retry)


# --- output ---------------------------------------------------------------------------------


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Aligned columns; every cell escaped, as it may hold text from the database."""
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=False)]
    for line in (header, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def _utcnow() -> datetime:
    return datetime.now(UTC)


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
