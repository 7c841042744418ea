"""The lease keeper: renews held tries' leases, stops tries past their limit or cancelled."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

from jobexec.core.db.store import JobStore
from jobexec.testing.waiting import wait_until
from workers.lease import HeldRun, LeaseKeeper


class FakeStore:
    """Records renewals; reports the runs of `cancelled` as cancelled."""

    def __init__(self) -> None:
        self.renewed: list[list[int]] = []
        self.cancelled: set[int] = set()

    def renew_leases(self, run_ids: Sequence[int], lease: timedelta) -> None:
        self.renewed.append(list(run_ids))

    def cancelled_runs(self, run_ids: Sequence[int]) -> list[int]:
        return [r for r in run_ids if r in self.cancelled]


class Stops:
    def __init__(self) -> None:
        self.calls: list[tuple[int, str]] = []
        self.event = threading.Event()

    def hook(self, run_id: int) -> Any:
        def stop(reason: str) -> None:
            self.calls.append((run_id, reason))
            self.event.set()

        return stop


def keeper(store: FakeStore, interval: float = 0.2, cancel_check: float = 0.2) -> LeaseKeeper:
    return LeaseKeeper(cast(JobStore, store), timedelta(seconds=30), interval, cancel_check)


def test_given_a_try_past_its_deadline_when_the_keeper_ticks_then_it_stops_and_is_not_renewed() -> (
    None
):
    # Given two held tries, one with a deadline 0.3 s away
    store, stops = FakeStore(), Stops()
    leases = keeper(store)
    late = HeldRun(1, time.monotonic() + 0.3, stops.hook(1))
    going = HeldRun(2, None, stops.hook(2))
    with leases.hold(late), leases.hold(going):
        # When the deadline passes, then the late one is told to stop, once, for its limit
        assert stops.event.wait(3)
        time.sleep(0.6)
        assert stops.calls == [(1, "limit")]
        # And from then on only the other one's lease is renewed
        renewed_since = store.renewed[-2:]
    assert renewed_since and all(batch == [2] for batch in renewed_since)


def test_given_a_cancelled_job_when_the_keeper_checks_then_its_try_is_stopped_for_cancel() -> None:
    store, stops = FakeStore(), Stops()
    leases = keeper(store, interval=10)
    with leases.hold(HeldRun(7, None, stops.hook(7))), leases.hold(HeldRun(8, None, stops.hook(8))):
        store.cancelled.add(7)

        assert stops.event.wait(3)
        time.sleep(0.5)

    assert stops.calls == [(7, "cancel")]


def test_given_held_tries_when_stop_all_then_each_is_told_once_and_the_stopped_are_skipped() -> (
    None
):
    store, stops = FakeStore(), Stops()
    leases = keeper(store, interval=10, cancel_check=10)
    with leases.hold(HeldRun(1, None, stops.hook(1))), leases.hold(HeldRun(2, None, stops.hook(2))):
        leases.stop_all("shutdown")
        leases.stop_all("shutdown")

    wait_until(lambda: len(stops.calls) >= 2, 2)
    assert sorted(stops.calls) == [(1, "shutdown"), (2, "shutdown")]
