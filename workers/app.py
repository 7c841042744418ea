"""`celery -A workers.app worker` entry: the Celery app with the execute_job task registered."""

from __future__ import annotations

from jobexec.config import Settings, settings_or_exit
from workers.celeryconf import create_app
from workers.tasks import register

settings: Settings = settings_or_exit()
app = create_app(settings)
register(app, settings)
