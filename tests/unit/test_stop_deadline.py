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
