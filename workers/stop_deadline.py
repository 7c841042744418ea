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

# Under the 10 s a stop may take: 3 s soft shutdown, 1-2 s of hand-back (under gevent up to 2 s
# more to reach the consumer's loop), the rest is margin for a loaded machine.
STOP_DEADLINE_S = 9.0
EXIT_OVERDUE = 1
_STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGQUIT")

_armed = threading.Event()

_Handler = Callable[[int, FrameType | None], Any]
_OnLoop = Callable[[_Handler, int], bool]


def watch_stop_signals(consumer: Any = None) -> None:
    """Arm the deadline when a stop signal arrives, before Celery's own handler runs.

    Called once Celery has installed its handlers (worker_ready), in the main thread; under
    gevent, in the greenlet that runs the consumer's loop.
    """
    if threading.current_thread() is not threading.main_thread():
        return  # signal.signal works in the main thread only
    on_loop = _loop_greenlet_runner(consumer)
    for name in _STOP_SIGNALS:
        _wrap(getattr(signal, name), on_loop)
    if on_loop is not None:
        _wrap_later_handlers(on_loop)


def _wrap(signum: int, on_loop: _OnLoop | None) -> None:
    previous = signal.getsignal(signum)
    if callable(previous):
        signal.signal(signum, _arming(previous, on_loop))


def _wrap_later_handlers(on_loop: _OnLoop) -> None:
    """The handlers Celery installs once a stop began (a second signal cancels the running
    tasks, a third forces the exit) run in the consumer loop's greenlet as well."""
    import celery.apps.worker as celery_worker

    install = celery_worker.install_worker_term_hard_handler

    def installing(worker: Any, sig: str = "SIGQUIT", **options: Any) -> None:
        install(worker, sig=sig, **options)
        _wrap(getattr(signal, sig), on_loop)

    celery_worker.install_worker_term_hard_handler = installing


def _arming(previous: _Handler, on_loop: _OnLoop | None = None) -> Callable[..., Any]:
    def handler(signum: int, frame: FrameType | None) -> Any:
        arm()
        if on_loop is not None and on_loop(previous, signum):
            return None  # Celery's handler runs in the consumer's greenlet, soon
        return previous(signum, frame)

    return handler


def _loop_greenlet_runner(consumer: Any) -> _OnLoop | None:
    """Under gevent, a way to run Celery's stop handler in the consumer loop's greenlet.

    Python runs a signal handler in whichever greenlet is current. In the hub, the soft
    shutdown's sleep raises BlockingSwitchOutError; in any other greenlet, cancelling the
    consumer reads the broker socket the loop is reading too. Either way the consumer stays
    subscribed, and a try handed back is delivered to the stopping worker again. The loop
    runs what `call_soon` queued at the top of its next cycle (at most 2 s later).
    """
    try:
        from gevent import monkey
    except ImportError:
        return None
    if consumer is None or not monkey.is_module_patched("socket"):
        return None
    from gevent import getcurrent

    loop_greenlet = getcurrent()
    queued: set[int] = set()

    def on_loop(handler: _Handler, signum: int) -> bool:
        if getcurrent() is loop_greenlet:
            return False
        if id(handler) not in queued:  # each of Celery's handlers once, as if signalled once
            queued.add(id(handler))
            consumer.call_soon(_then_stop_the_loop, handler, signum)
        return True

    return on_loop


def armed() -> bool:
    """Whether a stop signal has arrived: the worker is stopping."""
    return _armed.is_set()


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


_loop_told = threading.Event()


def _then_stop_the_loop(handler: _Handler, signum: int) -> None:
    """Celery's handler, then the loop's own shutdown check, not after another 2 s drain.

    Once only: a handler queued by a second signal may run while the worker already stops,
    where a WorkerTerminate would escape Celery's shutdown and end it with status 1.
    """
    from celery.worker import state

    handler(signum, None)
    if not _loop_told.is_set():
        _loop_told.set()
        state.maybe_shutdown()  # raises WorkerTerminate once the handler asked for it
