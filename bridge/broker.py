"""The Celery broker as the bridge sees it, through kombu alone: Redis, Sentinel and RabbitMQ alike.

Depth is the message count a queue declare answers on every kombu transport (the Redis one sums
the priority sub-lists); a failed declare or publish is one of `BROKER_ERRORS`, which the bridge
treats as an outage: partitions paused, nothing committed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from amqp.exceptions import AMQPError
from celery import Celery
from kombu.connection import Connection
from kombu.exceptions import KombuError

log = logging.getLogger("jobexec.bridge")


def _redis_errors() -> tuple[type[BaseException], ...]:
    """redis-py's errors, as kombu's Redis transport lists them (none when redis-py is absent)."""
    try:
        from kombu.transport.redis import get_redis_error_classes
    except ImportError:  # pragma: no cover - redis-py is a dependency of celery[redis]
        return ()
    classes = get_redis_error_classes()  # type: ignore[no-untyped-call]
    # kombu lists KeyError for a stale poller; in the bridge a KeyError is a bug, not an outage.
    errors = (*classes.connection_errors, *classes.channel_errors)
    return tuple(e for e in errors if e is not KeyError)


# What a publish to or a declare on any supported broker raises when the broker is away, refuses
# the connection, or nacks a message.
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    KombuError,  # OperationalError and the other kombu wrappers
    AMQPError,  # py-amqp: ConnectionError, ChannelError, MessageNacked, RecoverableConnectionError
    OSError,  # refused, reset, timed out
    *_redis_errors(),
)


class QueueDepth:
    """Messages waiting in the bridge's queues, read over one kombu connection kept open."""

    def __init__(self, app: Celery, queues: Sequence[str]) -> None:
        self._app = app
        self._queues = tuple(dict.fromkeys(queues))
        self._connection: Connection | None = None

    @property
    def queues(self) -> tuple[str, ...]:
        return self._queues

    def measure(self) -> dict[str, int]:
        """Messages waiting in each queue, or raise one of BROKER_ERRORS.

        A declare, not a passive one: a queue nobody created yet counts 0 (a passive declare
        would fail), and it is declared with the arguments Celery publishes and consumes with.
        """
        try:
            if self._connection is None:
                self._connection = self._app.connection_for_write()
                # One attempt, not kombu's retries for seconds: the loop must keep polling Kafka.
                self._connection.connect()
            channel = self._connection.default_channel
            depths: dict[str, int] = {}
            for name in self._queues:
                queue = self._app.amqp.queues[name].bind(channel)
                depths[name] = int(queue.queue_declare().message_count)
            return depths
        except BROKER_ERRORS:
            self.close()  # a fresh connection next time
            raise

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.release()  # type: ignore[no-untyped-call]
            except BROKER_ERRORS as exc:
                log.debug("closing the depth connection: %s", exc)
            self._connection = None
