"""The heartbeat that keeps a claimed run's lease alive while its executor runs."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from types import TracebackType

from jobexec.db.store import JobStore

log = logging.getLogger(__name__)


class Heartbeat:
    """Renews the lease every `interval` in a daemon thread; stops when the run ends."""

    def __init__(
        self, store: JobStore, run_id: int, lease: timedelta, interval: float, clock_skew: timedelta
    ) -> None:
        self._store = store
        self._run_id = run_id
        self._lease = lease
        self._interval = interval
        self._skew = clock_skew  # database clock minus ours, so the lease is in database time
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{run_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                now = datetime.now(UTC) + self._skew
                self._store.renew_lease(self._run_id, now, self._lease)
            except Exception as exc:  # a missed beat is survivable; the lease is longer
                log.warning(
                    "lease renewal failed: %s",
                    exc,
                    extra={"action": "lease_renew_failed", "run_id": self._run_id},
                )
