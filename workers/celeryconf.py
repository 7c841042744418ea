"""The workers' Celery app: the publishers' settings (jobexec.core.celeryapp) and their own."""

from __future__ import annotations

from typing import Any

from celery import Celery

from jobexec.core import celeryapp
from jobexec.core.config import Settings
from jobexec.core.sections import CelerySection


def worker_settings(settings: Settings) -> dict[str, Any]:
    """What only a consuming worker reads: acks, prefetch, events, the shutdown it takes."""
    return {
        # Ack after the task ran, and put it back if the worker process died mid-task.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": CelerySection.from_settings(settings).prefetch_multiplier,
        # Flower sees every task: workers send events, and the tries they publish themselves
        # (retries, rescued tries) send task-sent; the bridge does not (jobexec.core.celeryapp).
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        # SIGTERM (remapped to a cold shutdown by `jobexec worker`) lets running tasks finish for
        # 3 s, then tells them to hand themselves back (1 to 2 s): the 10 s stop, with a margin
        # for the pool and bootsteps to stop on a loaded machine (workers/stop_deadline.py).
        "worker_soft_shutdown_timeout": 3.0,
        "worker_enable_soft_shutdown_on_idle": True,
        "worker_hijack_root_logger": False,
    }


def celery_config(settings: Settings) -> dict[str, Any]:
    """The worker app's whole configuration, the user's pass-through settings applied."""
    return celeryapp.configured(
        settings, {**celeryapp.publisher_config(settings), **worker_settings(settings)}
    )


def create_app(settings: Settings) -> Celery:
    return celeryapp.create_app(settings, worker_settings(settings))
