"""The lease keeper: one thread per worker process watches the tries it executes.

Each tick it checks the held tries' time limits (in memory); once a second it asks the job
database which of their jobs were cancelled (one statement for all); every heartbeat it renews
the leases of the tries still going (one statement for all). A try past its limit or cancelled
is handed to its stop hook, on a thread of its own, and its lease is never renewed again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from jobexec.core.db.store import JobStore

log = logging.getLogger(__name__)

TICK_S = 0.2  # how late a time limit may be noticed
CANCEL_CHECK_S = 1.0  # how late a cancel may be noticed


@dataclass(eq=False)
class HeldRun:
    """A try the keeper watches: its run id, its deadline and what to do when it must stop.

    `stop` is called at most once, with why: "limit", "cancel" (on a thread of its own) or
    "shutdown" (by `stop_all`, when the worker hands its tries back).
    """

    run_id: int
    deadline: float | None  # time.monotonic() value; None: no limit
    stop: Callable[[str], None]
    stopping: bool = False


class LeaseKeeper:
    """Renews the leases of held tries and stops those past their limit or cancelled.

    One thread per process rather than one per run: starting and joining a thread per job
    was 5% of a worker's time (profiled).
    """

    def __init__(
        self,
        store: JobStore,
        lease: timedelta,
        interval: float,
        cancel_check: float = CANCEL_CHECK_S,
    ) -> None:
        self._store = store
        self._lease = lease
        self._interval = interval
        self._cancel_check = cancel_check
        self._held: dict[int, HeldRun] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextmanager
    def hold(self, run: HeldRun) -> Iterator[None]:
        """Keep the try's lease alive and watch it for the duration of the block."""
        with self._lock:
            self._held[run.run_id] = run
            if self._thread is None:
                self._thread = threading.Thread(target=self._beat, name="leases", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._held.pop(run.run_id, None)

    def stop_all(self, reason: str) -> None:
        """Tell every held try that is not stopping already to stop, now, on this thread."""
        with self._lock:
            going = [r for r in self._held.values() if not r.stopping]
        for run in going:
            run.stopping = True
            run.stop(reason)

    def _beat(self) -> None:
        next_renewal = time.monotonic() + self._interval
        next_cancel_check = time.monotonic() + self._cancel_check
        while True:
            time.sleep(TICK_S)
            now = time.monotonic()
            with self._lock:
                going = [r for r in self._held.values() if not r.stopping]
            for run in going:
                if run.deadline is not None and now >= run.deadline:
                    self._stop(run, "limit")
            going = [r for r in going if not r.stopping]
            if now >= next_cancel_check:
                next_cancel_check = now + self._cancel_check
                if going:
                    self._stop_cancelled(going)
                    going = [r for r in going if not r.stopping]
            if now >= next_renewal:
                next_renewal = now + self._interval
                if going:
                    self._renew(sorted(r.run_id for r in going))

    def _stop_cancelled(self, going: list[HeldRun]) -> None:
        try:
            cancelled = set(self._store.cancelled_runs([r.run_id for r in going]))
        except Exception as exc:  # checked again in a second
            log.warning("cancel check failed: %s", exc, extra={"action": "cancel_check_failed"})
            return
        for run in going:
            if run.run_id in cancelled:
                self._stop(run, "cancel")

    def _stop(self, run: HeldRun, reason: str) -> None:
        run.stopping = True  # from now on its lease is not renewed
        threading.Thread(
            target=_call_logged, args=(run, reason), name=f"stop-{run.run_id}", daemon=True
        ).start()

    def _renew(self, run_ids: list[int]) -> None:
        try:
            self._store.renew_leases(run_ids, self._lease)
        except Exception as exc:  # a missed beat is survivable; the lease is longer
            log.warning(
                "lease renewal failed: %s",
                exc,
                extra={"action": "lease_renew_failed", "runs": run_ids},
            )


def _call_logged(run: HeldRun, reason: str) -> None:
    try:
        run.stop(reason)
    except Exception:
        log.exception(
            "stopping try %s failed", run.run_id, extra={"action": "stop_failed", "run": run.run_id}
        )
