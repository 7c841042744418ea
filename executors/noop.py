"""The `noop` executor: does nothing, so benchmarks measure the service and not the job."""

from __future__ import annotations

from executors.base import Executor, JobRun, Stopped


class NoopExecutor(Executor):
    """Succeeds at once without doing anything; for benchmarks."""

    task = "noop"

    def execute(self, run: JobRun) -> None:
        if run.stop_requested():
            raise Stopped("told to stop before it started")
