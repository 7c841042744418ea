"""`celery -A workers.app worker` entry: the Celery app with the execute_job task registered."""

from __future__ import annotations

import sys

from celery import Celery
from celery.signals import worker_ready

from jobexec.core.config import ConfigError, Settings, settings_or_exit
from workers import pools, stop_deadline
from workers.celeryconf import create_app
from workers.tasks import check_registry, register


def app_or_exit(settings: Settings) -> Celery:
    """The configured app, or exit 2 with one line naming the bad broker or Celery setting.

    Celery's own `-A` loader would print the error inside a traceback; `jobexec worker` checks
    the same settings before it gets here.
    """
    try:
        return create_app(settings)
    except ConfigError as exc:
        print(f"jobexec: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


pools.install()  # before the worker reads --pool
settings: Settings = settings_or_exit()
app = app_or_exit(settings)  # first: nothing else is logged before a configuration error
check_registry(settings)  # a plugin clash or a broken plugin stops the worker at start
register(app, settings)
# Celery's stop handlers are in place once the worker is ready; the deadline wraps them.
worker_ready.connect(lambda sender=None, **_: stop_deadline.watch_stop_signals(sender), weak=False)
