"""A Celery task message read back from a test's broker queue, whichever the broker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class QueuedTask:
    """One `jobexec.execute_job` message waiting in a queue (Celery protocol 2)."""

    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    persistent: bool

    @property
    def job_id(self) -> str:
        value = self.kwargs["job_id"]
        assert isinstance(value, str)
        return value


class CeleryBroker(Protocol):
    """What the tests need of a broker fixture: `RedisBroker` and `RabbitBroker` both are one."""

    url: str
    queue: str

    def depth(self) -> int: ...
    def tasks(self) -> list[QueuedTask]: ...
    def drain(self) -> list[QueuedTask]: ...
    def properties(self) -> dict[str, str]: ...
    def cleanup(self) -> None: ...
