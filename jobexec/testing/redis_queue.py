"""A uniquely named Celery queue on the local Redis, removed after the test, and the
messages in it."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis
from kombu.connection import Connection

from jobexec.testing.task_messages import QueuedTask

REDIS_URL = "redis://127.0.0.1:6379/0"

# kombu's Redis transport keeps priority n of queue q in the list "q\x06\x16n" (n = 0 is q).
PRIORITY_SEPARATOR = "\x06\x16"


@dataclass
class RedisBroker:
    """The Celery broker of one test: the shared Redis and a queue no other test uses."""

    url: str = REDIS_URL
    queue: str = field(default_factory=lambda: f"jobs-{uuid.uuid4().hex[:8]}")

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def queue_keys(self) -> list[str]:
        return queue_keys(self.queue)

    def depth(self) -> int:
        """Messages waiting in the queue, every priority included."""
        with self.client() as client:
            return queue_depth(client, self.queue)

    def tasks(self) -> list[QueuedTask]:
        """Every waiting message (all priorities), left where it is."""
        with self.client() as client:
            return [decode(raw) for key in self.queue_keys() for raw in client.lrange(key, 0, -1)]

    def drain(self) -> list[QueuedTask]:
        """Take every waiting message out of the queue atomically, as a very fast worker would."""
        with self.client() as client:
            pipe = client.pipeline(transaction=True)
            for key in self.queue_keys():
                pipe.lrange(key, 0, -1)
            pipe.delete(*self.queue_keys())
            results = pipe.execute()
        return [decode(raw) for items in results[:-1] for raw in items]

    def properties(self) -> dict[str, str]:
        """The `configs.celery.*` settings that point a jobexec process at this queue."""
        return {"configs.celery.broker-url": self.url, "configs.celery.queue": self.queue}

    def cleanup(self) -> None:
        with self.client() as client:
            client.delete(*self.queue_keys())


def queue_keys(queue: str) -> list[str]:
    """The Redis lists of a Celery queue, one per priority."""
    return [queue] + [f"{queue}{PRIORITY_SEPARATOR}{n}" for n in range(1, 10)]


def queue_depth(client: redis.Redis, queue: str) -> int:
    """Messages waiting in the queue, every priority included, in one round trip."""
    pipe = client.pipeline(transaction=False)
    for key in queue_keys(queue):
        pipe.llen(key)
    return sum(int(n) for n in pipe.execute())


def decode(raw: bytes) -> QueuedTask:
    """A message as kombu's Redis transport stores it: a JSON envelope, the body in base64."""
    envelope = json.loads(raw)
    assert envelope["content-type"] == "application/json", envelope["content-type"]
    assert envelope["properties"]["body_encoding"] == "base64"
    args, kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
    persistent = envelope["properties"].get("delivery_mode") == 2
    return QueuedTask(envelope["headers"]["task"], args, kwargs, persistent)


def server_answers(url: str = REDIS_URL) -> bool:
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=3) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False


def expire_visibility(broker_url: str) -> int:
    """Do what any consumer does once a message's visibility timeout has passed: put every
    delivered but unacknowledged message back on its queue. Returns how many there were.

    kombu's own `QoS.restore_visible`, with a visibility timeout of 0, so the messages that a
    worker is running right now are delivered a second time while it still runs them.
    """
    with redis.Redis.from_url(broker_url) as client:
        unacked = int(client.hlen("unacked"))
    with Connection(  # type: ignore[no-untyped-call]
        broker_url, transport_options={"visibility_timeout": 0}
    ) as conn:
        channel: Any = conn.default_channel
        channel.qos.restore_visible(start=0, num=1000, interval=1)
    return unacked
