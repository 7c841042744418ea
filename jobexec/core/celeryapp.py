"""The Celery app of the processes that publish tries (the bridge; the workers build on it).

What a publisher and a consumer must agree on lives here: the broker, the queues and their
routes, JSON only, persistent messages and publisher confirms. The workers' own settings (acks,
prefetch, events, shutdown) are added by `workers.celeryconf`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Celery
from kombu.transport import resolve_transport

from jobexec.core.celery_properties import apply_celery_properties
from jobexec.core.config import ConfigError, Settings
from jobexec.core.sections import CelerySection, LeaseSection, RetrySection
from jobexec.core.taskmessage import TASK_NAME

_BROKER_URL_KEY = "configs.celery.broker-url"


def broker_url_problem(url: str) -> str | None:
    """Why kombu cannot use this broker URL, or None when it can."""
    scheme = url.partition("://")[0].split("+", 1)[0] if "://" in url else ""
    if not scheme:
        return "is not a URL (expected redis://, rediss://, sentinel://, amqp:// or amqps://)"
    try:
        resolve_transport(scheme)
    except KeyError:
        return f"names an unknown broker transport {scheme!r}"
    except ImportError as exc:
        return f"needs a library that is not installed ({exc.name})"
    return None


def _check_broker_url(settings: Settings) -> None:
    """An unusable broker URL stops the process at start, naming the key, never a traceback."""
    problem = broker_url_problem(CelerySection.from_settings(settings).configured_broker_url)
    if problem is not None:
        raise ConfigError(_BROKER_URL_KEY, problem, settings.source(_BROKER_URL_KEY))


def publisher_config(settings: Settings) -> dict[str, Any]:
    """The settings every process on the broker shares, before the user's pass-through ones."""
    _check_broker_url(settings)
    celery = CelerySection.from_settings(settings)
    queue = celery.queue
    queue_type = celery.queue_type
    lease_s = LeaseSection.from_settings(settings).duration.total_seconds()
    max_backoff_s = RetrySection.from_settings(settings).max_backoff
    return {
        "broker_url": celery.broker_url,
        # JSON only: task messages cross a trust boundary, pickle must never be accepted.
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "result_backend": None,
        "task_default_queue": queue,
        # RabbitMQ: durable queues (Celery's default) holding persistent messages; quorum queues
        # when asked for, for the default queue and every routed one Celery declares.
        "task_default_delivery_mode": "persistent",
        "task_default_queue_type": queue_type,
        "task_create_missing_queue_type": queue_type,
        "task_routes": {TASK_NAME: {"queue": queue}},
        # Workers' task-received events show every task in Flower; a task-sent event per
        # message cost the bridge a quarter of its time (profiled).
        "task_send_sent_event": False,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {
            # Redelivery of an unacked task must come well after its lease ran out, and after
            # the longest retry countdown (a worker holds those tasks unacknowledged). No 1 h
            # floor: a message parked in `unacked` by a broken connection comes back in
            # minutes, and an early duplicate is harmless (the lease defers it).
            "visibility_timeout": int(max(lease_s * 4, max_backoff_s * 2)),
            "socket_connect_timeout": 5,
            # kombu's Redis channel keeps at most 10 connections; a gevent worker acking from
            # 64 greenlets at once failed acks with MaxConnectionsError (bench io). Opened on
            # demand, so the ceiling costs nothing until used; py-amqp ignores the option.
            "max_connections": 1024,
            # py-amqp: every publish waits for RabbitMQ's confirm, so the bridge stores an
            # offset only once its task and every one before it is on the broker. Redis
            # transports ignore the option.
            "confirm_publish": True,
        },
        "enable_utc": True,
    }


def configured(settings: Settings, own: Mapping[str, Any]) -> dict[str, Any]:
    """`own` with a user's configs.celery.properties.* over it, never over what REFUSED names."""
    return apply_celery_properties(dict(own), settings)


def create_app(settings: Settings, role: Mapping[str, Any] | None = None) -> Celery:
    """The app of a publisher; `role` adds a process's own settings (the workers')."""
    app = Celery("jobexec", set_as_current=False)
    app.conf.update(configured(settings, {**publisher_config(settings), **(role or {})}))
    return app
