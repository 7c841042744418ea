"""A worker whose stop hangs ends at the deadline, its pool's children with it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

# A process whose SIGTERM handler never returns, as a Celery shutdown stuck on a pool child.
_STUCK_WORKER = textwrap.dedent(
    """
    import logging, os, signal, sys, time
    import billiard
    from workers import stop_deadline

    logging.basicConfig(stream=sys.stderr)
    stop_deadline.STOP_DEADLINE_S = 1.0
    child = billiard.Process(target=time.sleep, args=(600,))
    child.start()
    print(child.pid, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: time.sleep(600))
    stop_deadline.watch_stop_signals()
    os.kill(os.getpid(), signal.SIGTERM)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A killed child not yet reaped by init is a zombie: gone for our purpose.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_given_a_stop_that_hangs_when_the_deadline_passes_then_the_worker_and_children_exit() -> (
    None
):
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", _STUCK_WORKER], capture_output=True, text=True, timeout=30
    )
    elapsed = time.monotonic() - started

    child_pid = int(done.stdout.split()[0])
    assert done.returncode == 1, done.stderr
    assert "worker stop took longer than 1 s" in done.stderr
    assert elapsed < 20  # the handler alone would have held it for 600 s
    deadline = time.monotonic() + 5
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child_pid)


def test_given_no_handler_when_watching_then_nothing_is_installed() -> None:
    # Default dispositions (not callables) are left alone: no deadline without Celery's stop.
    code = (
        "import signal; from workers import stop_deadline; "
        "signal.signal(signal.SIGQUIT, signal.SIG_DFL); stop_deadline.watch_stop_signals(); "
        "print(signal.getsignal(signal.SIGQUIT) is signal.SIG_DFL)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "True", done.stderr


# Under gevent, a stop signal raised while the hub runs: Celery's handler sleeps (the soft
# shutdown), which in the hub raises BlockingSwitchOutError and skips the rest of the stop.
_GEVENT_WORKER = textwrap.dedent(
    """
    from gevent import monkey
    monkey.patch_all()
    import collections, os, signal, sys
    import gevent
    from gevent import get_hub, getcurrent
    from workers import stop_deadline

    loop_greenlet = getcurrent()
    ran_in = []

    def celery_handler(signum, frame):
        gevent.sleep(0.05)  # the soft shutdown's wait
        ran_in.append("loop" if getcurrent() is loop_greenlet else "elsewhere")

    class Consumer:  # the pending operations Celery's synloop runs at the top of each cycle
        def __init__(self):
            self.pending = collections.deque()

        def call_soon(self, fn, *args):
            self.pending.append(lambda: fn(*args))

    consumer = Consumer() if sys.argv[1] == "consumer" else None
    signal.signal(signal.SIGTERM, celery_handler)
    stop_deadline.watch_stop_signals(consumer)
    get_hub().loop.run_callback(lambda: os.kill(os.getpid(), signal.SIGTERM))
    try:
        gevent.sleep(0.3)
    except gevent.exceptions.BlockingSwitchOutError:
        print("blocking-switch-out")
    while consumer is not None and consumer.pending:
        consumer.pending.popleft()()
    print(",".join(ran_in) or "never ran", flush=True)
    os._exit(0)  # not the armed deadline's exit
    """
)


def _gevent_stop(consumer: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _GEVENT_WORKER, consumer],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_given_gevent_when_a_stop_signal_lands_in_the_hub_then_the_handler_runs_in_the_loop() -> (
    None
):
    done = _gevent_stop("consumer")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["loop"], done.stdout + done.stderr


def test_given_gevent_without_the_consumer_when_a_signal_lands_in_the_hub_then_it_fails() -> None:
    # The failure the deferral prevents: the handler runs in the hub and its sleep raises
    done = _gevent_stop("none")
    assert "BlockingSwitchOutError" in done.stderr + done.stdout, done.stdout + done.stderr
    assert "loop" not in done.stdout.split()
