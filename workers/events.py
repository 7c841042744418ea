"""The worker's Flower events go out without waiting for RabbitMQ's publisher confirms.

The app asks py-amqp to confirm every publish (jobexec.core.celeryapp), and the event
dispatcher's channel inherits it: each task-received, task-succeeded and heartbeat event then
waits a round trip, holding the dispatcher's lock. Under gevent, Celery's loop also drains that
connection for AMQP heartbeats, and can read the confirm a heartbeat greenlet waits for, which
then waits for ever with the lock held; the next task-received event blocks the whole worker.
An event is a monitoring notice, lost anyway when a worker dies: it needs no confirm. Tasks
the worker publishes (retries, rescued tries) keep theirs.
"""

from __future__ import annotations

from typing import Any

from celery import bootsteps


class EventsWithoutConfirms(bootsteps.StartStopStep):  # type: ignore[misc]
    """After Celery's Events step (re)creates the dispatcher, its channel stops confirming."""

    requires = ("celery.worker.consumer.events:Events",)

    def start(self, c: Any) -> None:
        dispatcher = getattr(c, "event_dispatcher", None)
        producer = getattr(dispatcher, "producer", None)
        if producer is not None:
            unconfirmed(producer.channel)


def unconfirmed(channel: Any) -> bool:
    """Make a py-amqp channel publish without waiting for confirms; whether it did."""
    publish = getattr(channel, "basic_publish", None)
    confirming = getattr(channel, "basic_publish_confirm", None)
    if publish is None or confirming is None or publish != confirming:
        return False  # not py-amqp (Redis), or not confirming
    channel.basic_publish = channel._basic_publish
    return True
