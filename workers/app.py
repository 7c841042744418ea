"""`celery -A workers.app worker` entry: the Celery app with the execute_job task registered."""

from __future__ import annotations

from jobexec.core.config import Settings, settings_or_exit
from workers import pools
from workers.celeryconf import create_app
from workers.tasks import check_registry, register

pools.install()  # before the worker reads --pool
settings: Settings = settings_or_exit()
check_registry(settings)  # a plugin clash or a broken plugin stops the worker at start
app = create_app(settings)
register(app, settings)
