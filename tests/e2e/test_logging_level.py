"""`configs.logging.level` reaches every process, Celery's worker included."""

from __future__ import annotations

import re

from jobexec.testing.config_files import ConfigFiles
from jobexec.testing.processes import Cli
from jobexec.testing.redis_queue import RedisBroker


def test_given_level_warn_when_db_upgrade_runs_then_its_info_line_is_left_out(
    cli: Cli, config_files: ConfigFiles, pg_url: str
) -> None:
    env = config_files.write({"configs.jobDb.url": pg_url})

    default = cli.run("db", "upgrade", env=env, timeout=60)
    quiet = cli.run("db", "upgrade", env={**env, "CONFIGS_LOGGING_LEVEL": "WARN"}, timeout=60)

    assert default.returncode == 0 and quiet.returncode == 0, default.stderr + quiet.stderr
    assert "is up to date" in default.stderr
    assert "is up to date" not in quiet.stderr


def test_given_level_debug_when_a_worker_starts_then_celery_keeps_logging_debug_lines(
    cli: Cli, config_files: ConfigFiles, redis_broker: RedisBroker, pg_url: str
) -> None:
    env = config_files.write(
        {**redis_broker.properties(), "configs.jobDb.url": pg_url, "configs.logging.level": "DEBUG"}
    )

    worker = cli.start("worker", "--concurrency", "1", env=env)

    # Celery sets the root level again once it starts: its boot steps, logged after that and at
    # DEBUG, show only if the configured level reached it.
    found = worker.wait_for_log(r"(?m)^\S+ \S+ DEBUG celery\.bootsteps: .*", timeout=60)
    assert re.search("DEBUG celery.bootsteps", found.group(0))
    worker.wait_for_log(r"INFO celery\.apps\.worker: celery@\S+ ready", timeout=60)
    assert worker.stop(timeout=15) == 0, worker.log()
