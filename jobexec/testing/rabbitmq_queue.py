"""A uniquely named Celery queue on the local RabbitMQ, deleted after the test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from amqp.exceptions import NotFound, PreconditionFailed
from kombu import Queue  # type: ignore[attr-defined]
from kombu.connection import Connection

from jobexec.testing.task_messages import QueuedTask

RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"


@dataclass
class RabbitBroker:
    """The Celery broker of one test: the shared RabbitMQ and a queue no other test uses."""

    url: str = RABBITMQ_URL
    queue: str = field(default_factory=lambda: f"jobs-{uuid.uuid4().hex[:8]}")

    def connection(self) -> Connection:
        return Connection(self.url, connect_timeout=5)  # type: ignore[no-untyped-call]

    def depth(self) -> int:
        """Messages ready in the queue (0 while nobody declared it)."""
        with self.connection() as conn:
            try:
                declared = conn.default_channel.queue_declare(self.queue, passive=True)
            except NotFound:
                return 0
            return int(declared.message_count)

    def tasks(self) -> list[QueuedTask]:
        """Every ready message, left in the queue: fetched unacknowledged, requeued on close."""
        return self._fetch(ack=False)

    def drain(self) -> list[QueuedTask]:
        """Take every ready message out of the queue, as a very fast worker would."""
        return self._fetch(ack=True)

    def _fetch(self, ack: bool) -> list[QueuedTask]:
        found: list[QueuedTask] = []
        with self.connection() as conn:
            unbound = Queue(self.queue, no_declare=True)  # type: ignore[no-untyped-call]
            queue = unbound.bind(conn.default_channel)  # type: ignore[no-untyped-call]
            try:
                while (message := queue.get(no_ack=ack)) is not None:
                    args, kwargs, _embed = message.decode()
                    persistent = message.properties.get("delivery_mode") == 2
                    found.append(QueuedTask(message.headers["task"], args, kwargs, persistent))
            except NotFound:
                return []
        return found

    def queue_is_durable(self) -> bool:
        """Whether the queue exists and is durable: redeclaring it transient is refused if so."""
        with self.connection() as conn:
            try:
                conn.default_channel.queue_declare(self.queue, durable=False, auto_delete=False)
            except PreconditionFailed:
                return True
            conn.default_channel.queue_delete(self.queue)  # we just made it: not what was asked
            return False

    def queue_type_is(self, queue_type: str) -> bool:
        """Whether the queue exists with this `x-queue-type`: any other is refused on redeclare."""
        with self.connection() as conn:
            try:
                conn.default_channel.queue_declare(
                    self.queue,
                    durable=True,
                    auto_delete=False,
                    arguments={"x-queue-type": queue_type},
                )
            except PreconditionFailed:
                return False
            return True

    def properties(self) -> dict[str, str]:
        """The `configs.celery.*` settings that point a jobexec process at this queue."""
        return {"configs.celery.broker-url": self.url, "configs.celery.queue": self.queue}

    def cleanup(self) -> None:
        with self.connection() as conn:
            conn.default_channel.queue_delete(self.queue)
            conn.default_channel.exchange_delete(self.queue)  # Celery's exchange of the queue


def server_answers(url: str = RABBITMQ_URL) -> bool:
    try:
        with Connection(url, connect_timeout=3) as conn:  # type: ignore[no-untyped-call]
            conn.connect()
            return True
    except Exception:
        return False
