"""The console's actions are the CLI's own commands (`jobexec jobs cancel`, `dlq replay`, ...):
the same checks, the same statements, the same messages, shown on the page instead of stderr."""

from __future__ import annotations

import argparse
import contextlib
import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobexec.cli.commands import dlq, jobs
from jobexec.core.config import ConfigError

# The commands print their outcome: one action at a time owns stdout and stderr.
_OUTPUT = threading.Lock()


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    message: str


def _handlers() -> dict[str, tuple[Callable[[argparse.Namespace], int] | None, dict[str, Any]]]:
    return {
        # The console's cancel is the operator's deliberate choice on the job's page: --force.
        "cancel": (jobs.cmd_cancel, {"force": True}),
        "retry": (jobs.cmd_retry, {}),
        "pause": (getattr(jobs, "cmd_pause", None), {}),
        "resume": (getattr(jobs, "cmd_resume", None), {}),
    }


ACTIONS = ("retry", "cancel", "pause", "resume")


def available(action: str) -> bool:
    """Whether this build's CLI has the command behind an action."""
    handler, _ = _handlers().get(action, (None, {}))
    return handler is not None


def job_action(action: str, job_id: str) -> Outcome:
    """Run `jobexec jobs ACTION JOB_ID`."""
    handler, extra = _handlers().get(action, (None, {}))
    if handler is None:
        return Outcome(False, f"{action} is not available")
    return _run(handler, job_id=job_id, **extra)


def replay(partition: int, offset: int) -> Outcome:
    """Run `jobexec dlq replay --offset PARTITION:OFFSET`."""
    return _run(dlq.cmd_replay, offset=[f"{partition}:{offset}"], all=False, dry_run=False)


def _run(handler: Callable[[argparse.Namespace], int], **args: Any) -> Outcome:
    out = io.StringIO()
    with _OUTPUT, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            code = handler(argparse.Namespace(**args))
        except ConfigError as exc:  # the command's settings, as `jobexec` itself reports them
            print(exc)
            code = 2
        except SystemExit as exc:  # a configuration that became invalid since the start
            code = exc.code if isinstance(exc.code, int) else 2
    lines = [line.removeprefix("jobexec: ") for line in out.getvalue().splitlines() if line]
    return Outcome(code == 0, "\n".join(lines) or ("done" if code == 0 else "refused"))
