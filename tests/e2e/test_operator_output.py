"""Operator surfaces against crafted input: `dlq replay` re-arms only what it should, and
`dlq list`, `jobs list` and `jobs show` never print secrets or raw terminal escapes.

Real Tansu and PostgreSQL; the `jobexec` script as a subprocess, as in test_jobs_cli.py.
"""

from __future__ import annotations

import json
import time

from jobexec.core.events import JobEvent
from jobexec.core.outcomes import EXHAUSTED_FQCN, exhaustion_reason
from jobexec.operations.replay import EXHAUSTED_PREFIX
from jobexec.testing.commands import dead_letter, dlq_positions, jobexec, ok, replays
from jobexec.testing.stack import Stack

ESCAPE = "\x1b]0;owned\x07\x1b[2J"  # retitle the terminal, clear the screen


def _fail(stack: Stack, job_id: str, reason: str) -> None:
    """The job as a worker leaves it after failing: FAILED, reason, failed_at = now."""
    with stack.store.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE jobs SET status = 'FAILED', failure_reason = %s, failed_at = now() "
            "WHERE job_id = %s",
            (reason, job_id),
        )


def _exhausted_letter(stack: Stack, key: str, job_id: str, offset: int) -> None:
    event = JobEvent(job_id, 3, None).to_json()
    dead_letter(stack, key, event, EXHAUSTED_FQCN, exhaustion_reason(3, "HTTP 503"), offset)


def test_the_prefix_replay_checks_is_how_an_exhaustion_reason_begins() -> None:
    assert exhaustion_reason(3, "HTTP 503").startswith(EXHAUSTED_PREFIX)


def test_given_crafted_and_stale_dead_letters_when_replayed_then_no_job_is_re_armed(
    stack: Stack,
) -> None:
    # Given a job that failed for good with HTTP 400, and one that exhausted its tries
    stack.configure()
    for job_id in ("job_400", "job_victim", "job_stale", "job_poisoned"):
        stack.insert(job_id, {"task": "noop"}, status="FAILED", attempts=3)
    _fail(stack, "job_400", "HTTP 400 Bad Request")
    _fail(stack, "job_victim", exhaustion_reason(3, "HTTP 503"))
    _fail(stack, "job_poisoned", exhaustion_reason(3, "HTTP 503"))
    # And a stale record: written before job_stale's latest exhaustion
    _exhausted_letter(stack, "job_stale", "job_stale", 1)
    time.sleep(1.5)  # longer than the clock skew replay allows
    _fail(stack, "job_stale", exhaustion_reason(3, "HTTP 503"))
    # And crafted records: an exhausted-run record for the 400 job, one under another job's
    # key, and a "poison" record whose value names a FAILED job
    _exhausted_letter(stack, "job_400", "job_400", 2)
    _exhausted_letter(stack, "job_other", "job_victim", 3)
    poison_value = JobEvent("job_poisoned", 3, None).to_json()
    dead_letter(stack, "job_poisoned", poison_value, "jobexec.events.PoisonRecord", "bad", 4)
    positions = dlq_positions(stack)

    # When every record is replayed
    done = jobexec(stack, "dlq", "replay", "--all")

    # Then the three exhausted-run records are refused, each with its reason, and exit 1
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    assert f"refused {positions['job_400']}: job job_400 failed for good" in out
    assert f"refused {positions['job_other']}: its key 'job_other' is not the job id" in out
    assert f"refused {positions['job_stale']}: stale" in out
    assert "refused 3" in out
    # And no job was re-armed: all four are still FAILED
    for job_id in ("job_400", "job_victim", "job_stale", "job_poisoned"):
        assert stack.row(job_id)["status"] == "FAILED", job_id
    # And the poison record was republished unchanged, the only record published
    published = stack.kafka.consume_all(stack.kafka.topic, expected=2, timeout=3)
    assert [(r.key, r.value) for r in published] == [(b"job_poisoned", poison_value)]
    assert replays(stack) == 1


def test_given_a_fresh_exhausted_record_when_replayed_then_its_job_is_re_armed(
    stack: Stack,
) -> None:
    # Given a job that exhausted its tries, and its dead letter written after that
    stack.configure()
    stack.insert("job_fresh", {"task": "noop"}, status="FAILED", attempts=3)
    _fail(stack, "job_fresh", exhaustion_reason(3, "HTTP 503"))
    _exhausted_letter(stack, "job_fresh", "job_fresh", 1)

    # When it is replayed
    out = ok(stack, "dlq", "replay", "--all")

    # Then the job is re-armed and the event published as attempt 1
    assert "job job_fresh re-armed" in out
    assert stack.row("job_fresh")["status"] == "RUNNING"
    [published] = stack.kafka.consume_all(stack.kafka.topic, expected=1, timeout=5)
    assert published.key == b"job_fresh" and published.json()["attempt"] == 1


def test_given_escapes_and_secrets_in_records_and_rows_when_listed_then_neither_reaches_output(
    stack: Stack,
) -> None:
    # Given a poison record and a job row carrying terminal escapes, and a payload with secrets
    stack.configure()
    dead_letter(stack, f"job_{ESCAPE}", f"{{{ESCAPE}".encode(), "x.Poison", f"m{ESCAPE}", 5)
    job_id = f"job_esc{ESCAPE}"
    payload = {
        "task": "http",
        "url": "https://svc:Url5ecret@example.com/h?access_token=Tok5ecret",
        "headers": [["X-API_KEY", "Key5ecret"]],
        "body": {"credentials": {"pass": "Pass5ecret"}},
    }
    stack.insert(job_id, payload, status="FAILED", attempts=1)
    _fail(stack, job_id, f"HTTP 400 {ESCAPE} from https://u:Reason5ecret@example.com/")

    # When an operator lists and shows them, as text and as JSON
    outputs = [
        ok(stack, "dlq", "list"),
        ok(stack, "dlq", "list", "--json"),
        ok(stack, "jobs", "list"),
        ok(stack, "jobs", "list", "--json"),
        ok(stack, "jobs", "show", job_id),
        ok(stack, "jobs", "show", job_id, "--json"),
    ]

    # Then no raw escape character and no secret is printed
    for text in outputs:
        assert "\x1b" not in text and "\x07" not in text, text
        for secret in ("Url5ecret", "Tok5ecret", "Key5ecret", "Pass5ecret", "Reason5ecret"):
            assert secret not in text, (secret, text)
    # And the escapes are shown escaped in text, and survive JSON intact
    assert "key=job_\\x1b]0;owned\\x07\\x1b[2J" in outputs[0]
    assert "job_esc\\x1b]0;owned" in outputs[2]
    assert json.loads(outputs[3])["job_id"] == job_id
    shown = json.loads(outputs[5])["job"]
    assert shown["payload"]["url"] == "https://svc:***@example.com/h?access_token=***"
    assert shown["payload"]["headers"] == [["X-API_KEY", "***"]]
