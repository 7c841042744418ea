"""Worker pools that hand running tries back when the worker stops.

Celery's soft shutdown ends by cancelling the tasks still running (`pool.terminate_job`). The
prefork pool kills the child, and the lost worker's message is requeued. The threads and solo
pools do not implement it (the worker crashes), and the gevent pool kills the greenlet, after
which the failed task's message is acknowledged and lost. These pools instead tell this
process's running tries to stop: each one hands itself back (its message requeued, its lease
released) as soon as its executor returns.

`install()` puts them under Celery's own names (`--pool threads|solo|gevent`).
"""

from __future__ import annotations

import time
from typing import Any

from celery import concurrency
from celery.concurrency import solo, thread

STOP_WAIT_S = 2.0  # how long a stopping pool waits for tries told to stop to hand back


def hand_back_running_tries() -> None:
    """Tell every try this process runs to stop; each hands itself back when it returns."""
    from workers.tasks import running_context  # the task module imports this one

    ctx = running_context()
    if ctx is not None:
        ctx.leases.stop_all("shutdown")


def wait_for_running_tries(timeout: float = STOP_WAIT_S) -> None:
    """Wait, boundedly, for this process's tries to leave their executors."""
    from workers.lifecycle import executing

    deadline = time.monotonic() + timeout
    while executing() and time.monotonic() < deadline:
        time.sleep(0.05)


class ThreadPool(thread.TaskPool):  # type: ignore[misc]
    """`--pool threads`: a thread cannot be killed, so its try is told to stop."""

    def terminate_job(self, pid: Any, signal: Any = None) -> None:
        hand_back_running_tries()

    def on_stop(self) -> None:
        # Not shutdown(wait=True): a try that ignores stop would hold the worker for ever.
        self.executor.shutdown(wait=False, cancel_futures=True)
        wait_for_running_tries()


class SoloPool(solo.TaskPool):  # type: ignore[misc]
    """`--pool solo`: the try runs on the worker's own thread; it is told to stop."""

    def terminate_job(self, pid: Any, signal: Any = None) -> None:
        hand_back_running_tries()


def install() -> None:
    """Serve `--pool threads`, `solo` and `gevent` with the pools of this project."""
    concurrency.ALIASES["threads"] = f"{__name__}:ThreadPool"
    concurrency.ALIASES["solo"] = f"{__name__}:SoloPool"
    concurrency.ALIASES["gevent"] = "workers.green:GeventPool"
