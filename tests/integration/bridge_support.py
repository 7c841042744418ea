"""Helpers of the bridge and scheduler tests: a bridge in a thread, settings from properties.

The bridge runs in-process, built exactly as `jobexec bridge` builds it, so a test can watch its
stats and its consumer. The Kafka readers and producer, the private Redis and the Celery queues
are `jobexec.testing`'s.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Mapping

from bridge.consumer import Bridge
from jobexec.core.config import Settings, relaxed_env_name
from jobexec.core.taskmessage import TASK_NAME
from jobexec.testing.task_messages import QueuedTask
from jobexec.testing.waiting import wait_until


def environment(*property_sets: Mapping[str, str]) -> dict[str, str]:
    """Property keys to the environment variables `Settings.load` reads (relaxed binding)."""
    return {relaxed_env_name(key): value for props in property_sets for key, value in props.items()}


# --- the bridge ---------------------------------------------------------------------------------


class RunningBridge:
    """A Bridge wired as `jobexec bridge` wires it, running in a thread until `stop()`."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.bridge = Bridge.from_settings(Settings.load(environ))
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="bridge", daemon=True)

    def _run(self) -> None:
        try:
            self.bridge.run(self._stop)
        except BaseException as exc:  # reported by stop() and alive()
            self._error = exc

    def start(self) -> RunningBridge:
        self.thread.start()
        return self

    def alive(self) -> bool:
        if self._error is not None:
            raise AssertionError(f"bridge thread failed: {self._error!r}") from self._error
        return self.thread.is_alive()

    def assignment(self) -> list[tuple[str, int]]:
        return [(tp.topic, tp.partition) for tp in self.bridge.consumer.assignment()]

    def wait_assigned(self, timeout: float = 30.0) -> None:
        wait_until(
            lambda: self.alive() and self.assignment(),
            timeout,
            message="the bridge got no partitions",
        )

    def stop(self, timeout: float = 12.0) -> float:
        """Ask the loop to stop (as SIGTERM does); returns how long the shutdown took."""
        started = time.monotonic()
        self._stop.set()
        self.thread.join(timeout)
        took = time.monotonic() - started
        if self.thread.is_alive():
            raise AssertionError(f"the bridge did not stop within {timeout:g}s")
        if self._error is not None:
            raise AssertionError(f"bridge thread failed: {self._error!r}") from self._error
        return took

    def stop_quietly(self) -> None:
        """For fixture teardown: stop without raising again what the test already saw."""
        self._stop.set()
        if self.thread.is_alive():
            self.thread.join(12)


# --- Celery task messages and job ids -----------------------------------------------------------


def job_ids(tasks: Iterable[QueuedTask]) -> list[str]:
    ids = []
    for task in tasks:
        assert task.task == TASK_NAME, task.task
        ids.append(task.job_id)
    return ids


def new_job_ids(count: int, prefix: str = "job") -> list[str]:
    return [f"{prefix}_{uuid.uuid4()}" for _ in range(count)]
