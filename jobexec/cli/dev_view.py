"""The live view of `jobexec dev`: where everything is, the jobs, and the latest tries.

On a terminal the view redraws in place (ANSI clear and home); into a file or a pipe it prints
each frame as plain lines, so a log of the session reads top to bottom.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from jobexec.core.db.store import JobStore

JOBS_SHOWN = 12
RUNS_SHOWN = 8
_CLEAR_AND_HOME = "\x1b[H\x1b[2J"


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%H:%M:%S") if value else "-"


def render(
    header: Sequence[str], jobs: Sequence[dict[str, Any]], runs: Sequence[dict[str, Any]]
) -> list[str]:
    """One frame: the header, the jobs with their latest try, the latest tries of any job."""
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    lines = [*header, ""] if header else []
    lines.append(f"[{stamp} UTC] jobs (first {JOBS_SHOWN} by id)")
    lines.append(
        f"  {'job':<40} {'type':<10} {'status':<10} {'next run (UTC)':<20} {'tries':>5}  last try"
    )
    for row in jobs:
        next_run = row["next_run_at"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            f"  {row['job_id']:<40} {row['job_type']:<10} {row['status']:<10} {next_run:<20} "
            f"{row['attempts']:>5}  {row['last_try'] or '-'}"
        )
    lines.append(f"latest tries (newest first, {RUNS_SHOWN} at most)")
    for run in runs:
        error = f"  {run['error'][:60]}" if run["error"] else ""
        lines.append(
            f"  {_time(run['started_at'])} -> {_time(run['finished_at'])}  "
            f"{run['job_id']:<40} try {run['attempt']:<3} {run['status']}{error}"
        )
    return lines


class View:
    """Draws frames to `out`: in place on a terminal, as plain lines otherwise."""

    def __init__(self, store: JobStore, header: Sequence[str], out: TextIO | None = None) -> None:
        self.store = store
        self.header = list(header)
        self.out = out or sys.stdout
        self.in_place = self.out.isatty()

    def draw(self) -> None:
        # The header was printed once already unless the screen is redrawn from the top.
        header = self.header if self.in_place else []
        frame = render(header, self.store.jobs_page(JOBS_SHOWN), self.store.latest_runs(RUNS_SHOWN))
        text = "\n".join(frame) + "\n"
        self.out.write(_CLEAR_AND_HOME + text if self.in_place else text + "\n")
        self.out.flush()
