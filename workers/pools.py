"""Worker pools that hand running tries back when the worker stops.

Celery's soft shutdown ends by cancelling the tasks still running (`pool.terminate_job`). The
prefork pool kills the child, and the message is restored with its try's lease left to run
out, when a rescuer records it LOST and spends an attempt. The threads and solo pools do not
implement it (the worker crashes), and the gevent pool kills the greenlet, after which the
failed task's message is acknowledged and lost. These pools instead tell the running tries to
stop: each one hands itself back (its message requeued, its try marked HANDED_BACK for the
next delivery to take over at once) as soon as its executor returns. Prefork children are told
by a signal, and killed as before only if they have not returned within `STOP_WAIT_S`.

`install()` puts them under Celery's own names (`--pool prefork|threads|solo|gevent`).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

from celery import concurrency
from celery.concurrency import prefork, solo, thread

from workers import stop_deadline

STOP_WAIT_S = 2.0  # how long a stopping pool waits for tries told to stop to hand back
# Celery leaves SIGUSR2 alone in pool children: it tells a child to hand its tries back.
HAND_BACK_SIGNAL = signal.SIGUSR2


_stopping = threading.Event()


def stopping() -> bool:
    """Whether this process has handed its tries back: a task delivered now is not run."""
    return _stopping.is_set()


def hand_back_running_tries(worker_stopping: bool = True) -> None:
    """Tell every try this process runs to stop; each hands itself back when it returns.

    When the worker stops (not on a revoke's terminate), a delivery to this process from then
    on goes back to the queue unrun: a try handed back before the worker unsubscribed (a
    second stop signal cancels at once) would otherwise come back to the stopping worker,
    which would start it and hold the stop.
    """
    from workers.tasks import running_context  # the task module imports this one

    if worker_stopping:
        _stopping.set()
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
        hand_back_running_tries(stop_deadline.armed())

    def on_stop(self) -> None:
        # Not shutdown(wait=True): a try that ignores stop would hold the worker for ever.
        self.executor.shutdown(wait=False, cancel_futures=True)
        wait_for_running_tries()


class SoloPool(solo.TaskPool):  # type: ignore[misc]
    """`--pool solo`: the try runs on the worker's own thread; it is told to stop."""

    def terminate_job(self, pid: Any, signal: Any = None) -> None:
        hand_back_running_tries(stop_deadline.armed())


def listen_for_hand_back() -> None:
    """In a prefork child: hand the running tries back when the parent signals it."""

    def handler(_signum: int, _frame: object) -> None:
        # Off the signal handler: stopping takes locks the interrupted code may hold.
        threading.Thread(target=hand_back_running_tries, name="hand-back", daemon=True).start()

    signal.signal(HAND_BACK_SIGNAL, handler)


class PreforkPool(prefork.TaskPool):  # type: ignore[misc]
    """`--pool prefork`: children's tries are told to hand themselves back before a child is
    killed, so a worker's graceful stop spends no attempt."""

    def on_start(self) -> None:
        super().on_start()
        kill: Any = self._pool.terminate_job  # billiard's, which on_start proxies
        told: list[bool] = []

        def terminate_job(pid: Any, sig: Any = None) -> None:
            # At a stop, once: every child at once, one wait for all. A revoke's terminate
            # kills its child as Celery does.
            if stop_deadline.armed() and not told:
                told.append(True)
                for child in getattr(self._pool, "_pool", ()) or ():
                    try:
                        os.kill(child.pid, HAND_BACK_SIGNAL)
                    except (OSError, TypeError):
                        continue  # gone already, or not started
                time.sleep(STOP_WAIT_S / 2)
            kill(pid, sig)

        self.terminate_job = terminate_job


def install() -> None:
    """Serve `--pool prefork`, `threads`, `solo` and `gevent` with the pools of this project."""
    concurrency.ALIASES["prefork"] = f"{__name__}:PreforkPool"
    concurrency.ALIASES["threads"] = f"{__name__}:ThreadPool"
    concurrency.ALIASES["solo"] = f"{__name__}:SoloPool"
    concurrency.ALIASES["gevent"] = "workers.green:GeventPool"
