"""TaskPublisher: JobEvents to `jobexec.execute_job` messages, batched to the Celery broker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from celery import Celery

from bridge.broker import QueueDepth
from bridge.routing import Router
from jobexec.core import metrics, taskmessage
from jobexec.core.events import JobEvent, Origin
from jobexec.core.taskmessage import TaskMessage


@dataclass(frozen=True, slots=True)
class Enqueue:
    event: JobEvent
    origin: Origin
    task: str | None = None  # the record's jobexec-task header: what routes choose the queue by
    # The record's W3C trace headers (traceparent, tracestate), carried as the task's headers.
    trace: Mapping[str, str] | None = None

    @property
    def message(self) -> TaskMessage:
        return TaskMessage(self.event, self.origin)


class TaskPublisher:
    def __init__(self, app: Celery, router: Router, batch_size: int) -> None:
        self._app = app
        self._router = router
        self._batch_size = batch_size
        self._depth = QueueDepth(app, router.queues)

    def publish(self, items: Sequence[Enqueue]) -> None:
        """Enqueue every item or raise: on return, the broker has accepted all of them.

        On RabbitMQ the transport's `confirm_publish` makes each publish wait for the broker's
        confirm, so a return means every message was confirmed (persisted on a durable queue).
        """
        if not items:
            return
        queues = self._router.queues_for([(item.event.job_id, item.task) for item in items])
        with self._app.producer_or_acquire() as producer, producer.batch(max_size=self._batch_size):
            for item, queue in zip(items, queues, strict=True):
                taskmessage.send(
                    self._app,
                    item.message,
                    queue=queue,
                    producer=producer,
                    # Message headers: the worker reads them as self.request.traceparent.
                    headers=item.trace,
                    retry=False,  # the bridge owns retrying: it pauses Kafka meanwhile
                )

    def queue_depth(self) -> int:
        """Messages waiting in the deepest of the queues the bridge fills (all priorities)."""
        depths = self._depth.measure()
        for queue, depth in depths.items():
            metrics.QUEUE_DEPTH.labels(queue).set(depth)
        return max(depths.values())

    def close(self) -> None:
        self._depth.close()
