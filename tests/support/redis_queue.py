"""A uniquely named Celery queue on the local Redis, removed after the test."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import redis

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
        return [self.queue] + [f"{self.queue}{PRIORITY_SEPARATOR}{n}" for n in range(1, 10)]

    def depth(self) -> int:
        """Messages waiting in the queue, every priority included."""
        with self.client() as client:
            return sum(int(client.llen(key)) for key in self.queue_keys())

    def properties(self) -> dict[str, str]:
        """The `configs.celery.*` settings that point a jobexec process at this queue."""
        return {"configs.celery.broker-url": self.url, "configs.celery.queue": self.queue}

    def cleanup(self) -> None:
        with self.client() as client:
            client.delete(*self.queue_keys())


def server_answers(url: str = REDIS_URL) -> bool:
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=3) as client:
            return bool(client.ping())
    except redis.RedisError:
        return False
