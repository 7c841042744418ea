"""Running `jobexec` commands in a test and checking what an operator sees of them."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.request

from sqlalchemy import func, select

from jobexec.core.db.schema import dlq_replays
from jobexec.core.deadletter import DeadLetter
from jobexec.core.events import Origin
from jobexec.testing.stack import Stack


def jobexec(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """`jobexec ARGS` with the stack's configuration, its output captured."""
    return stack.cli.run(*args, env=stack.env)


def ok(stack: Stack, *args: str) -> str:
    """Run a command that must succeed without a traceback; return its standard output."""
    done = jobexec(stack, *args)
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}{done.stderr}"
    assert "Traceback" not in done.stderr
    return done.stdout


def refused(stack: Stack, *args: str, code: int = 1) -> str:
    """Run a command that must fail with `code` and one `jobexec:` line; return that line."""
    done = jobexec(stack, *args)
    assert done.returncode == code, f"{args}: {done.returncode}\n{done.stdout}{done.stderr}"
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("jobexec: "), done.stderr
    return lines[0]


def assert_one_clean_line(output: str, stderr: str, *must_name: str) -> None:
    """A user's error: no traceback anywhere, one line on stderr naming each of `must_name`."""
    assert "Traceback" not in output, output
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    for text in must_name:
        assert text in lines[0], lines[0]


def dead_letter(stack: Stack, key: str, value: bytes, fqcn: str, message: str, offset: int) -> None:
    """Put a dead letter on the stack's DLT as the bridge or a worker writes one."""
    letter = DeadLetter(key.encode(), value, fqcn, message, Origin(stack.kafka.topic, 0, offset))
    headers = [(name, raw or b"") for name, raw in letter.headers()]
    stack.kafka.produce(key, value, headers=[*headers, ("origin", b"test")], topic=stack.kafka.dlt)


def dlq_positions(stack: Stack) -> dict[str, str]:
    """Key -> PARTITION:OFFSET, from `jobexec dlq list --json`."""
    lines = ok(stack, "dlq", "list", "--json").splitlines()
    return {(r := json.loads(line))["key"]: f"{r['partition']}:{r['offset']}" for line in lines}


def replays(stack: Stack) -> int:
    """How many replays `dlq_replays` has recorded."""
    with stack.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(dlq_replays)).scalar_one())


def basic_auth(user: str, password: str) -> str:
    """The credentials part of an `Authorization: Basic` header."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def status_of(url: str, auth: tuple[str, str] | None) -> int:
    """The HTTP status of a GET (0 while nothing listens), with basic auth when given."""
    request = urllib.request.Request(url)
    if auth:
        request.add_header("Authorization", f"Basic {basic_auth(*auth)}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError:
        return 0  # not listening yet
