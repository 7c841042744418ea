"""`celery -A workers.app worker` entry: the Celery app with the execute_job task registered."""

from __future__ import annotations

from celery.signals import worker_ready

from jobexec.core.config import Settings, settings_or_exit
from workers import pools, stop_deadline
from workers.celeryconf import create_app
from workers.tasks import check_registry, register

pools.install()  # before the worker reads --pool
settings: Settings = settings_or_exit()
check_registry(settings)  # a plugin clash or a broken plugin stops the worker at start
app = create_app(settings)
register(app, settings)
# Celery's stop handlers are in place once the worker is ready; the deadline wraps them.
worker_ready.connect(lambda **_: stop_deadline.watch_stop_signals(), weak=False)
