"""History retention: finished rows of jobexec's own tables older than
`configs.history.retention-days` are deleted, a small batch per statement.

`jobexec scheduler` and every worker run a `PruneLoop`; an advisory lock lets one of them prune
at a time, so with no scheduler running the workers keep the history bounded. `jobs` rows are
never deleted: they belong to the job API.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobexec.core import metrics
from jobexec.core.config import Settings
from jobexec.core.db.store import JobStore
from jobexec.core.sections import HistorySection

log = logging.getLogger("jobexec.retention")

BATCH_ROWS = 1000
BATCH_PAUSE_S = 0.05  # between batches: other writers get the tables in between


@dataclass(frozen=True, slots=True)
class Retention:
    """How long finished history is kept, and how it is deleted."""

    keep: timedelta
    interval: float  # seconds between passes; 0 = never prune
    batch: int = BATCH_ROWS
    pause: float = BATCH_PAUSE_S

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        history = HistorySection.from_settings(settings)
        return cls(keep=history.retention, interval=history.prune_interval)


class Pruner:
    """Deletes a table's old finished rows in batches, one pass at a time."""

    def __init__(self, store: JobStore, retention: Retention) -> None:
        self.store = store
        self.retention = retention
        self.tables: dict[str, Callable[[datetime, int], int]] = {
            "job_runs": store.prune_runs,
            "dlq_replays": store.prune_replays,
        }

    def prune(self, stop: threading.Event | None = None) -> dict[str, int] | None:
        """One pass over every table: rows deleted per table, or None when another process
        holds the pruning lock. Stops between batches when `stop` is set."""
        stop = stop or threading.Event()
        with self.store.pruning_lock() as ours:
            if not ours:
                return None
            cutoff = self.store.db_now() - self.retention.keep
            deleted = {table: 0 for table in self.tables}
            for table, delete_batch in self.tables.items():
                while not stop.is_set():
                    count = delete_batch(cutoff, self.retention.batch)
                    deleted[table] += count
                    metrics.HISTORY_PRUNED.labels(table).inc(count)
                    if count < self.retention.batch:
                        break
                    stop.wait(self.retention.pause)
        if any(deleted.values()):
            log.info(
                "pruned history finished before %s: %s",
                cutoff.isoformat(timespec="seconds"),
                ", ".join(f"{n} from {t}" for t, n in deleted.items()),
                extra={"action": "history_pruned", "pruned": deleted},
            )
        return deleted


class PruneLoop:
    """A daemon thread that runs a pass every `retention.interval` seconds, the first at once."""

    def __init__(self, pruner: Pruner) -> None:
        self.pruner = pruner
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Settings, store: JobStore) -> PruneLoop:
        return cls(Pruner(store, Retention.from_settings(settings)))

    def start(self) -> None:
        if not self.pruner.retention.interval:
            return
        self._thread = threading.Thread(target=self._run, name="history-pruner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.pruner.prune(self._stop)
            except Exception as exc:  # the database is away: try at the next pass
                log.warning(
                    "pruning the history failed: %s",
                    type(exc).__name__,
                    extra={"action": "history_prune_failed"},
                )
            self._stop.wait(self.pruner.retention.interval)


def prune_step(settings: Settings) -> type[Any]:
    """The worker bootstep that runs a PruneLoop in the worker's main process (one per worker,
    whatever the pool), on its own small engine. Off when the prune interval is 0."""
    from celery import bootsteps

    from jobexec.core.db.engine import database_url, make_engine

    class PruneStep(bootsteps.StartStopStep):  # type: ignore[misc]
        requires = ("celery.worker.components:Pool",)  # forked children get no connections

        def include_if(self, worker: Any) -> bool:
            return bool(HistorySection.from_settings(settings).prune_interval)

        def create(self, worker: Any) -> PruneLoop:
            store = JobStore(make_engine(database_url(settings)))
            # A pool child forked later must not close the parent's connections as its own.
            os.register_at_fork(after_in_child=lambda: store.engine.dispose(close=False))
            return PruneLoop.from_settings(settings, store)

    return PruneStep
