"""The job CLI's input checks: payload, times, cron, filters and DLT positions, no services."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from jobexec.cli.commands import EXIT_BAD_INPUT, CommandError
from jobexec.cli.commands.dlq import parse_position
from jobexec.cli.commands.jobs import parse_at, parse_choices, parse_payload
from jobexec.cli.main import parser
from jobexec.operations.errors import InvalidInput
from jobexec.operations.jobs import build_job

NOW = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)


def bad(call: object) -> str:
    """The message of a refusal the CLI reports as bad input (exit 2)."""
    assert isinstance(call, InvalidInput) or (
        isinstance(call, CommandError) and call.code == EXIT_BAD_INPUT
    )
    return str(call)


def test_payload_is_a_json_object_inline_or_from_a_file(tmp_path: Path) -> None:
    assert parse_payload('{"url": "http://x"}') == {"url": "http://x"}
    path = tmp_path / "p.json"
    path.write_text('{"seconds": 1}')
    assert parse_payload(f"@{path}") == {"seconds": 1}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('{"url": ', "--payload is not valid JSON: Expecting value: line 1 column 9"),
        ("[1]", "must be a JSON object, not a JSON array"),
        ('"x"', "not a JSON string"),
        ("null", "not a JSON null"),
        ("@/does/not/exist.json", "--payload file /does/not/exist.json cannot be read"),
    ],
)
def test_a_payload_that_is_not_a_json_object_is_bad_input(text: str, says: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_payload(text)
    assert says in bad(caught.value)
    assert "\n" not in str(caught.value)


def test_at_takes_iso_8601_and_a_missing_offset_means_utc() -> None:
    assert parse_at("2030-01-31T09:00:00Z") == datetime(2030, 1, 31, 9, tzinfo=UTC)
    assert parse_at("2030-01-31T10:00:00+01:00") == datetime(2030, 1, 31, 9, tzinfo=UTC)
    assert parse_at("2030-01-31 09:00") == datetime(2030, 1, 31, 9, tzinfo=UTC)
    with pytest.raises(CommandError) as caught:
        parse_at("tomorrow")
    assert "not an ISO-8601 time" in bad(caught.value)


def test_a_one_time_job_now_is_immediate_and_due_now() -> None:
    row = build_job("noop", {}, None, None, None, "me", NOW)

    assert row["job_id"].startswith("job_") and len(row["job_id"]) == 40
    assert row["job_type"] == "ONE_TIME" and row["execution_mode"] == "IMMEDIATE"
    assert row["next_run_at"] == NOW and row["status"] == "SCHEDULED" and row["attempts"] == 0
    assert row["payload"] == {"task": "noop"} and row["created_by"] == "me"


def test_a_one_time_job_at_a_time_is_scheduled_then() -> None:
    at = datetime(2031, 1, 1, tzinfo=UTC)
    row = build_job("http", {"url": "u"}, at, None, "job_x", "me", NOW)

    assert row["job_id"] == "job_x" and row["execution_mode"] == "SCHEDULED"
    assert row["next_run_at"] == at and row["payload"] == {"url": "u", "task": "http"}


def test_a_recurring_job_is_due_at_the_next_fire_time_after_now() -> None:
    row = build_job("noop", {}, None, "0 0 * * *", None, "me", NOW)

    assert row["job_type"] == "RECURRING" and row["cron_expression"] == "0 0 * * *"
    assert row["next_run_at"] == datetime(2030, 5, 7, tzinfo=UTC)
    assert "execution_mode" not in row  # insert_jobs leaves it NULL


@pytest.mark.parametrize(
    ("cron", "says"),
    [("* * *", "has 3 fields, not 5 or 6"), ("61 * * * *", "is invalid"), ("", "no cron")],
)
def test_an_invalid_cron_is_bad_input(cron: str, says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        build_job("noop", {}, None, cron, None, "me", NOW)
    assert "invalid --cron" in bad(caught.value) and says in str(caught.value)


def test_a_payload_task_that_contradicts_the_task_option_is_bad_input() -> None:
    assert build_job("noop", {"task": "noop"}, None, None, None, "me", NOW)["payload"] == {
        "task": "noop"
    }
    with pytest.raises(InvalidInput) as caught:
        build_job("noop", {"task": "http"}, None, None, None, "me", NOW)
    assert "--payload has task 'http' but --task is 'noop'" in bad(caught.value)


def test_filters_are_case_insensitive_repeatable_and_comma_separated() -> None:
    choices = ["ONE_TIME", "RECURRING"]
    assert parse_choices(["one-time", "recurring,ONE_TIME"], choices, "--type") == [
        "ONE_TIME",
        "RECURRING",
        "ONE_TIME",
    ]
    with pytest.raises(CommandError) as caught:
        parse_choices(["weekly"], choices, "--type")
    assert "--type 'weekly' is not one of ONE_TIME, RECURRING" in bad(caught.value)


def test_dlt_positions_are_offset_or_partition_colon_offset() -> None:
    assert parse_position("12") == (None, 12)
    assert parse_position(" 2:12 ") == (2, 12)
    for text in ("x", "1:", "-1", "1:2:3"):
        with pytest.raises(CommandError):
            parse_position(text)


def test_the_commands_are_registered_on_the_jobexec_parser() -> None:
    args = parser().parse_args(["jobs", "submit", "--task", "http", "--cron", "* * * * *"])
    assert (args.task, args.cron, args.payload, args.at) == ("http", "* * * * *", "{}", None)
    args = parser().parse_args(["jobs", "list", "--status", "FAILED", "--status", "PAUSED"])
    assert args.status == ["FAILED", "PAUSED"] and args.limit == 100 and not args.json
    args = parser().parse_args(["dlq", "replay", "--offset", "0:1", "--offset", "2", "--dry-run"])
    assert args.offset == ["0:1", "2"] and args.dry_run and not args.all
    for argv in (
        ["jobs", "submit", "--task", "x", "--at", "2030-01-01", "--cron", "* * * * *"],
        ["dlq", "replay"],
        ["dlq", "replay", "--all", "--offset", "1"],
    ):
        with pytest.raises(SystemExit) as exited:
            parser().parse_args(argv)
        assert exited.value.code == 2
