"""The `jobexec` console script: one sub-command per process of the service."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from jobexec.config import ConfigError, Settings, settings_or_exit
from jobexec.logs import configure

if TYPE_CHECKING:
    from jobexec.health import Health

log = logging.getLogger("jobexec")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        log.info(
            "received %s; stopping",
            signal.Signals(signum).name,
            extra={"action": "shutdown_requested"},
        )
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _serve_health(settings: Settings, health: Health) -> None:
    port = settings.get("configs.metrics.port")
    if port:
        from jobexec.health import serve

        serve(settings.get("configs.metrics.host"), port, health)


def _settings() -> Settings:
    settings = settings_or_exit()
    configure(settings.get("configs.log.format"))
    return settings


def cmd_bridge(_args: argparse.Namespace) -> int:
    settings = _settings()
    settings.require("configs.kafka.bootstrap-servers")
    from bridge.consumer import Bridge

    bridge = Bridge.from_settings(settings)
    _serve_health(settings, bridge.health)
    bridge.run(_stop_on_signals())
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings()
    settings.require("configs.jobDb.url")
    from workers.celeryconf import celery_config

    celery_config(settings)  # a bad broker or Celery setting exits 2 before anything is logged
    # Billiard reads this at import: SIGTERM becomes a soft-then-cold shutdown, bounded in time,
    # instead of a warm one that waits for the longest task.
    os.environ.setdefault("REMAP_SIGTERM", "SIGQUIT")
    if settings.get("configs.metrics.port"):
        # Prefork children count in files here; the parent serves their sum.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="jobexec-metrics-")
        from jobexec.health import Health

        _serve_health(settings, Health(stale_after=float("inf")))
    from workers.app import app

    argv = ["worker", *args.celery_args]
    if not _names_queues(args.celery_args):  # a user's -Q q1,q2 wins; else the default queue
        argv[1:1] = ["--queues", settings.get("configs.celery.queue")]
    from celery.signals import worker_shutting_down

    asked: list[str] = []
    worker_shutting_down.connect(lambda sig, **_: asked.append(sig), weak=False)
    # app.start, not worker_main: the worker's exit status reaches the supervisor.
    code = int(app.start(argv=argv) or 0)
    if code == 0 and not asked:
        # Celery returns 0 after some unrecoverable errors (a kombu crash on a Redis restart):
        # a worker that stopped without being asked has failed, so its supervisor restarts it.
        log.error("worker stopped without a signal; exiting 1", extra={"action": "worker_died"})
        return 1
    return code


def _names_queues(celery_args: Sequence[str]) -> bool:
    """Whether `celery worker` arguments choose the queues (-Q q1,q2, -Qq1, --queues[=]...)."""
    return any(a == "-Q" or a.startswith(("-Q", "--queues")) for a in celery_args)


def flower_login(settings: Settings) -> str:
    """`user:password` for Flower's basic auth, refused when Flower could not check it.

    Flower compares the whole `user:password` text with hmac.compare_digest, which takes
    ASCII only, and a `:` in the user name would move the split between the two.
    """
    user: str = settings.require("secrets.flower.username")
    password: str = settings.require("secrets.flower.password")
    for key, value in (("secrets.flower.username", user), ("secrets.flower.password", password)):
        if not (value.isascii() and value.isprintable()):
            raise ConfigError(
                key, "is invalid: *** (must be printable ASCII)", settings.source(key)
            )
    if ":" in user:
        problem = "is invalid: *** (must not contain ':')"
        raise ConfigError(
            "secrets.flower.username", problem, settings.source("secrets.flower.username")
        )
    return f"{user}:{password}"


def cmd_flower(args: argparse.Namespace) -> int:
    settings = _settings()
    login = flower_login(settings)
    # Set Flower's option directly, as a list of one login: FLOWER_BASIC_AUTH would be split on
    # `,` (a password `a,b` becoming two logins), and argv would show the password in `ps`.
    os.environ.pop("FLOWER_BASIC_AUTH", None)
    import flower.options  # noqa: F401 - defines the options set below
    from tornado.options import options

    options.basic_auth = [login]
    from workers.app import app

    app.start(
        argv=[
            "flower",
            f"--address={settings.get('configs.flower.address')}",
            f"--port={settings.get('configs.flower.port')}",
            # kwargs hold job_id and attempt: an operator finds a job's runs in the list.
            "--tasks_columns=name,uuid,state,kwargs,received,started,runtime,worker,retries",
            *args.flower_args,
        ]
    )
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    settings = _settings()
    settings.require("configs.kafka.bootstrap-servers")
    from jobexec.db.engine import database_url, make_engine
    from jobexec.db.store import JobStore
    from jobexec.deadletter import DeadLetterWriter
    from jobexec.kafka import Connectivity, reliable_producer
    from jobexec.scheduler import Scheduler
    from jobexec.sweeper import Sweeper

    store = JobStore(make_engine(database_url(settings)))
    connection = Connectivity("scheduler")
    producer = reliable_producer(settings.kafka_client_properties, connection)
    sweeper = Sweeper(settings, store, DeadLetterWriter(producer, settings.dead_letter_topic))
    from jobexec.retention import PruneLoop

    scheduler = Scheduler(
        settings,
        store,
        producer,
        sweeper,
        connection,
        dispatch_due=not args.sweep_only,
        pruner=PruneLoop.from_settings(settings, JobStore(make_engine(database_url(settings)))),
    )
    _serve_health(settings, scheduler.health)
    scheduler.run(_stop_on_signals())
    return 0


def cmd_db_upgrade(_args: argparse.Namespace) -> int:
    settings = _settings()
    from sqlalchemy.exc import OperationalError

    from jobexec.db.engine import database_url, make_engine, masked
    from jobexec.db.migrate import upgrade
    from jobexec.masking import mask_text
    from jobexec.printable import printable

    url = database_url(settings)
    try:
        upgrade(make_engine(url))
    except OperationalError as exc:
        # Unreachable or refusing: one line naming the database, exit 1 like any unreachable
        # service (exit 2 is kept for settings that are wrong in themselves).
        first = str(exc.orig or exc).strip().splitlines() or [type(exc).__name__]
        reason = printable(mask_text(first[0]))
        print(f"jobexec: cannot reach the job database {masked(url)}: {reason}", file=sys.stderr)
        return 1
    log.info("schema of %s is up to date", masked(url), extra={"action": "db_upgraded"})
    return 0


def cmd_config(_args: argparse.Namespace) -> int:
    settings = settings_or_exit()
    for key, value in sorted(settings.masked().items()):
        print(f"{key}={value}")
    return 0


def cmd_console(_args: argparse.Namespace) -> int:
    settings = _settings()
    settings.require("configs.jobDb.url")
    from jobexec.console.app import serve

    return serve(settings)


def cmd_dev(args: argparse.Namespace) -> int:
    configure("plain")
    from jobexec.dev import run_dev

    return run_dev(args.dir, args.duration)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="jobexec",
        description="Executor service for scheduled jobs. Settings come from the .properties files "
        "in EXECUTOR_CONFIG_LOCATION (or SPRING_CONFIG_LOCATION) and from environment variables.",
    )
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser(
        "bridge", help="consume JobEvents from Kafka and enqueue Celery tasks"
    ).set_defaults(func=cmd_bridge)
    worker = sub.add_parser(
        "worker",
        help="run a Celery worker (any `celery worker` option is passed on)",
        prefix_chars="\0",  # every option after `worker` belongs to Celery
    )
    worker.add_argument("celery_args", nargs=argparse.REMAINDER)
    worker.set_defaults(func=cmd_worker)
    flower = sub.add_parser(
        "flower",
        help="Flower, the Celery monitor, behind basic auth (other flower options are passed on)",
        prefix_chars="\0",
    )
    flower.add_argument("flower_args", nargs=argparse.REMAINDER)
    flower.set_defaults(func=cmd_flower)
    scheduler = sub.add_parser("scheduler", help="claim due jobs and publish their JobEvents")
    scheduler.add_argument(
        "--sweep-only",
        action="store_true",
        help="only re-dispatch abandoned runs, beside the existing system's scheduler",
    )
    scheduler.set_defaults(func=cmd_scheduler)
    db = sub.add_parser("db", help="job database schema")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    db_sub.add_parser("upgrade", help="create or migrate the schema (safe to repeat)").set_defaults(
        func=cmd_db_upgrade
    )
    sub.add_parser("config", help="print the effective settings, secrets masked").set_defaults(
        func=cmd_config
    )
    sub.add_parser(
        "console",
        help="the operator's web console: jobs, run history, actions, dead letters",
        description="Serve the web console on configs.console.host:configs.console.port, "
        "behind basic auth from secrets.console.username and secrets.console.password.",
    ).set_defaults(func=cmd_console)
    dev = sub.add_parser("dev", help="run everything on this machine with embedded defaults")
    dev.add_argument("--dir", default=".jobexec-dev", help="working folder [.jobexec-dev]")
    dev.add_argument(
        "--for",
        dest="duration",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop by itself after SECONDS (default: run until Ctrl-C)",
    )
    dev.set_defaults(func=cmd_dev)
    from jobexec.commands import dlq, jobs  # operator commands: the jobs table and the DLT

    jobs.register(sub)
    dlq.register(sub)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"jobexec: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
