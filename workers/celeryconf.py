"""The Celery app, configured from jobexec's settings; the bridge and the workers share it."""

from __future__ import annotations

from typing import Any

from celery import Celery

from jobexec.config import Settings

TASK_NAME = "jobexec.execute_job"


def celery_config(settings: Settings) -> dict[str, Any]:
    queue = settings.get("configs.celery.queue")
    lease_s = settings.get("configs.lease.duration-ms") / 1000
    max_backoff_s = settings.get("configs.retry.max-backoff-ms") / 1000
    return {
        "broker_url": settings.broker_url,
        # JSON only: task messages cross a trust boundary, pickle must never be accepted.
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        "result_backend": None,
        # Ack after the task ran, and put it back if the worker process died mid-task.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": settings.get("configs.celery.prefetch-multiplier"),
        "task_default_queue": queue,
        "task_routes": {TASK_NAME: {"queue": queue}},
        # Flower sees every task: workers send events, publishers send task-sent.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "broker_connection_retry_on_startup": True,
        # SIGTERM (remapped to a cold shutdown by `jobexec worker`) lets running tasks finish for
        # 6 s, then hands them back to the queue: the contract's 10 s stop, with a margin.
        "worker_soft_shutdown_timeout": 6.0,
        "worker_enable_soft_shutdown_on_idle": True,
        "broker_transport_options": {
            # Redelivery of an unacked task must come well after its lease ran out, and after
            # the longest retry countdown (a worker holds those tasks unacknowledged). No 1 h
            # floor: a message parked in `unacked` by a broken connection comes back in
            # minutes, and an early duplicate is harmless (the lease defers it).
            "visibility_timeout": int(max(lease_s * 4, max_backoff_s * 2)),
            "socket_connect_timeout": 5,
        },
        "worker_hijack_root_logger": False,
        "enable_utc": True,
    }


def create_app(settings: Settings) -> Celery:
    app = Celery("jobexec", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app
