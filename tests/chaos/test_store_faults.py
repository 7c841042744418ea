"""The stores under fire: PostgreSQL connections killed and the database gone for seconds, Redis
crashed and restarted from its append-only file, both mid-stream."""

from __future__ import annotations

import threading
import time

import pytest

from jobexec.testing.events import event_record
from tests.chaos.conftest import SHORT_LEASE, ChaosStack, job_ids, scaled
from tests.chaos.faults import terminate_backends

pytestmark = pytest.mark.chaos

DB_OUTAGE_S = 5.0
REDIS_OUTAGE_S = 3.0


class _Trickle:
    """Inserts SCHEDULED jobs in small batches from a thread, as a job API under load does."""

    def __init__(self, chaos: ChaosStack, ids: list[str], per_second: float) -> None:
        self.chaos = chaos
        self.ids = ids
        self.per_second = per_second
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="trickle", daemon=True)
        self._thread.start()

    def join(self, timeout: float = 120) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the job inserts did not finish"
        assert not self.errors, self.errors

    def _run(self) -> None:
        batch = 20
        started = time.monotonic()
        try:
            for start in range(0, len(self.ids), batch):
                self.chaos.insert_http_jobs(self.ids[start : start + batch], status="SCHEDULED")
                pause = started + (start + batch) / self.per_second - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
        except BaseException as exc:
            self.errors.append(exc)


def _terminate_for(chaos: ChaosStack, seconds: float, every: float = 0.6) -> int:
    terminated = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        terminated += terminate_backends(chaos.db_name)
        time.sleep(every)
    return terminated


def test_given_a_stream_when_postgres_connections_die_and_the_database_goes_away_then_none_is_lost(
    chaos: ChaosStack,
) -> None:
    # Given the whole service, its database reached through a proxy that can be cut, and a
    # stream of due jobs written while it runs
    proxy = chaos.use_db_proxy()
    ids = job_ids("pg", scaled(800))
    chaos.configure_chaos(
        {
            # The safety net for a claim whose commit went through unseen (connection killed
            # during COMMIT): such rows are RUNNING without a JobEvent until swept.
            "configs.sweeper.abandoned-after-ms": "15000",
            "configs.sweeper.interval-ms": "1000",
        }
    )
    chaos.launch("worker")
    chaos.launch("bridge")
    chaos.launch("scheduler")
    trickle = _Trickle(chaos, ids, per_second=len(ids) / 18)

    # When every connection of the service is terminated again and again (pg_terminate_backend)
    time.sleep(3)
    terminated = _terminate_for(chaos, 6)
    # And the database is unreachable for a few seconds (connections reset, new ones refused)
    proxy.stop()
    time.sleep(DB_OUTAGE_S)
    proxy.start()
    # And connections are terminated once more
    terminated += _terminate_for(chaos, 3)
    recovered_from = time.monotonic()
    trickle.join()

    # Then every job completes, each executed once
    settled = chaos.wait_settled(len(ids), timeout=120 + len(ids) / 10)
    chaos.verdict(
        "postgres_faults",
        ids,
        len(ids),
        recovered_from,
        settled,
        backends_terminated=terminated,
        outage_s=DB_OUTAGE_S,
    )
    assert len(chaos.running("worker")) == 1, "the worker survives the database outage"
    # And the faults were felt, not dodged: the scheduler lost the database and found it again
    scheduler_log = chaos.logs("scheduler")
    assert "job database unavailable" in scheduler_log, scheduler_log[-3000:]
    assert "job database reachable again" in scheduler_log, scheduler_log[-3000:]


class _Supervisor:
    """Restarts a worker that exited, as systemd, Kubernetes or compose's restart policy do."""

    def __init__(self, chaos: ChaosStack) -> None:
        self.chaos = chaos
        self.exit_codes: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for name, process in list(self.chaos.processes.items()):
                if name.startswith("worker") and not process.running():
                    self.exit_codes.append(process.returncode)
                    del self.chaos.processes[name]
                    self.chaos.launch("worker", wait=False)


def test_given_a_stream_when_redis_crashes_and_restarts_from_its_aof_then_none_is_lost(
    chaos: ChaosStack,
) -> None:
    # Given a private Redis with an append-only file (fsync always), a supervised worker, a
    # bridge, the sweeper (`jobexec scheduler --sweep-only`, as beside the existing scheduler)
    # and a stream of events
    broker = chaos.use_private_redis()
    ids = job_ids("redis", scaled(1000))
    chaos.configure_chaos(
        {
            **SHORT_LEASE,
            # Longer than a worker takes to die of the outage (kombu's crash path: ~30 s)
            # and be restarted: the sweeper is for lost messages, not for a worker's restart.
            "configs.sweeper.abandoned-after-ms": "60000",
            "configs.sweeper.interval-ms": "1000",
        }
    )
    chaos.insert_http_jobs(ids)
    chaos.launch("worker")
    chaos.launch("bridge")
    sweeper = chaos.cli.start("scheduler", "--sweep-only", env=chaos.env, name="sweeper")
    chaos.processes["sweeper"] = sweeper
    chaos.wait_ready(sweeper)
    supervisor = _Supervisor(chaos)
    stream = chaos.stream([event_record(j) for j in ids], per_second=len(ids) / 15)

    # When Redis is killed with SIGKILL mid-stream and started again seconds later
    stream.wait_sent(0.4)
    crashed_at = time.monotonic()
    broker.crash()
    time.sleep(REDIS_OUTAGE_S)
    broker.start()
    restarted_at = time.monotonic()
    stream.join()

    # Then every job completes, each executed once
    settled = chaos.wait_settled(len(ids), timeout=120 + len(ids) / 10)
    supervisor.stop()
    chaos.verdict(
        "redis_restart",
        ids,
        len(ids),
        restarted_at,
        settled,
        outage_s=round(restarted_at - crashed_at, 1),
        worker_restarts=len(supervisor.exit_codes),
    )
    # And a worker that died of the outage said so: a supervisor restarts only a failure
    assert all(code != 0 for code in supervisor.exit_codes), supervisor.exit_codes
    # And the outage was felt: the bridge paused on it and resumed after it
    bridge_log = chaos.logs("bridge")
    assert "cannot hand records over" in bridge_log, bridge_log[-3000:]
    assert "Celery broker reachable again" in bridge_log, bridge_log[-3000:]
