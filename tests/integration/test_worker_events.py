"""The worker's events reach Flower's exchange on RabbitMQ without waiting for confirms."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from celery import Celery
from kombu import Exchange, Queue  # type: ignore[attr-defined]

from jobexec.testing.rabbitmq_queue import RabbitBroker
from workers.events import EventsWithoutConfirms, unconfirmed


def test_given_confirms_on_when_the_events_step_starts_then_events_publish_unconfirmed(
    rabbitmq_broker: RabbitBroker,
) -> None:
    # Given the app's publisher confirms, and a queue where Flower would read worker events
    app = Celery("events-test", broker=rabbitmq_broker.url, set_as_current=False)
    app.conf.broker_transport_options = {"confirm_publish": True}
    watched = Queue(  # type: ignore[no-untyped-call]
        f"events-{uuid.uuid4().hex[:8]}",
        Exchange("celeryev", type="topic"),  # type: ignore[no-untyped-call]
        routing_key="worker.#",
        auto_delete=True,
    )
    with app.connection_for_write() as conn:
        watched(conn.default_channel).declare()  # type: ignore[no-untyped-call]
        dispatcher = app.events.Dispatcher(conn, hostname="w@test", enabled=True)
        channel = dispatcher.producer.channel
        assert channel.basic_publish == channel.basic_publish_confirm  # what Celery set up

        # When the worker's step runs after Celery's Events step
        EventsWithoutConfirms(SimpleNamespace()).start(SimpleNamespace(event_dispatcher=dispatcher))
        dispatcher.send("worker-heartbeat")

        # Then the channel publishes without waiting, and the heartbeat still arrives
        assert channel.basic_publish == channel._basic_publish
        got = watched(conn.default_channel).get(no_ack=True)  # type: ignore[no-untyped-call]
        assert got is not None and got.payload["type"] == "worker-heartbeat"
        assert not unconfirmed(channel)  # done once; a second call changes nothing
        dispatcher.close()
