"""A worker's stop has a deadline: past it, the process ends with its pool's children.

Celery's shutdown waits without bound on a pool child that does not exit or a bootstep that
does not return; a supervisor's stop then ends in SIGKILL after its own grace period, with
nothing logged. Tries are handed back or recorded in the first seconds of a stop (soft
shutdown, then the pools' hand-back); what is left past the deadline is only waiting.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("jobexec.worker")

# Under the 10 s a stop may take: 5 s soft shutdown, 1-2 s of hand-back, the rest is margin.
STOP_DEADLINE_S = 9.0
EXIT_OVERDUE = 1
_STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGQUIT")

_armed = threading.Event()


def watch_stop_signals() -> None:
    """Arm the deadline when a stop signal arrives, before Celery's own handler runs.

    Called once Celery has installed its handlers (worker_ready), in the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # signal.signal works in the main thread only
    for name in _STOP_SIGNALS:
        signum = getattr(signal, name)
        previous = signal.getsignal(signum)
        if callable(previous):
            signal.signal(signum, _arming(previous))


def _arming(previous: Callable[[int, FrameType | None], Any]) -> Callable[..., Any]:
    def handler(signum: int, frame: FrameType | None) -> Any:
        arm()
        return previous(signum, frame)

    return handler


def arm() -> None:
    """Start the countdown once; later stop signals do not restart it."""
    if _armed.is_set():
        return
    _armed.set()
    start, sleep = _native_thread_and_sleep()
    start(_expire, (STOP_DEADLINE_S, sleep))


def _expire(deadline_s: float, sleep: Callable[[float], None]) -> None:
    sleep(deadline_s)
    log.error(
        "worker stop took longer than %.0f s; ending its pool processes and exiting",
        deadline_s,
        extra={"action": "worker_stop_overdue"},
    )
    for handler in logging.getLogger().handlers:
        handler.flush()
    _kill_children()
    os._exit(EXIT_OVERDUE)


def _kill_children() -> None:
    from billiard import process

    for child in process.active_children():
        if child.pid:
            try:
                os.kill(child.pid, signal.SIGKILL)
            except OSError:
                continue  # gone already


def _native_thread_and_sleep() -> tuple[Callable[..., Any], Callable[[float], None]]:
    """A real OS thread even under gevent's patches: a blocked hub must not hold the deadline."""
    try:
        from gevent import monkey
    except ImportError:
        monkey = None
    if monkey is not None and monkey.is_module_patched("threading"):
        start_new_thread = monkey.get_original("_thread", "start_new_thread")
        return start_new_thread, monkey.get_original("time", "sleep")
    import _thread

    return _thread.start_new_thread, time.sleep
