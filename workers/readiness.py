"""A worker's readiness: its Celery broker and its job database answer.

`/readyz` asks on each probe; the answer is kept a few seconds so a busy prober costs one
connection attempt per dependency per interval, each bounded by a short timeout.
"""

from __future__ import annotations

import threading
import time

from kombu.connection import Connection
from sqlalchemy import URL

from jobexec.core.db.probe import DatabaseProbe

_TIMEOUT_S = 3


class WorkerReadiness:
    """Callable for Health.readiness: {"celery_broker": bool, "database": bool}."""

    def __init__(self, broker_url: str, database_url: URL, keep_s: float = 5.0) -> None:
        self.broker_url = broker_url
        self._database = DatabaseProbe(database_url, _TIMEOUT_S)
        self._keep_s = keep_s
        self._lock = threading.Lock()
        self._checked_at = -float("inf")
        self._answer: dict[str, bool] = {}

    def __call__(self) -> dict[str, bool]:
        with self._lock:
            if time.monotonic() - self._checked_at >= self._keep_s:
                self._answer = {"celery_broker": self._broker(), "database": self._database()}
                self._checked_at = time.monotonic()
            return dict(self._answer)

    def _broker(self) -> bool:
        try:
            with Connection(self.broker_url, connect_timeout=_TIMEOUT_S) as conn:  # type: ignore[no-untyped-call]
                conn.ensure_connection(max_retries=1, timeout=_TIMEOUT_S)
                conn.default_channel  # noqa: B018 - opening a channel is what pings Redis
        except Exception:  # any failure means not ready; the reason is the broker's to log
            return False
        return True
