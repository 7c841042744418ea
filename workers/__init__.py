"""The Celery side: the app, the `jobexec.execute_job` task and the job lifecycle it drives."""
