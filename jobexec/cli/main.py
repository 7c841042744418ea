"""The `jobexec` console script: one sub-command per process of the service."""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import signal
import sys
import tempfile
import textwrap
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from jobexec.core.config import ConfigError, Settings, settings_or_exit
from jobexec.core.logs import configure
from jobexec.core.sections import (
    CelerySection,
    KafkaSection,
    ListenSection,
    LoggingSection,
    MetricsSection,
)

if TYPE_CHECKING:
    from jobexec.core.health import Health

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
    metrics = MetricsSection.from_settings(settings)
    if metrics.port:
        from jobexec.core.health import serve

        serve(metrics.host, metrics.port, health, metrics.port_source)


def _settings() -> Settings:
    settings = settings_or_exit()
    logging_section = LoggingSection.from_settings(settings)
    configure(logging_section.format, logging_section.level)
    return settings


def _asks_help(passed_on: Sequence[str]) -> bool:
    return any(arg in {"-h", "--help"} for arg in passed_on)


def _help_with_celery_options(args: argparse.Namespace, command: str) -> int:
    """Our help, then Celery's (or Flower's) own options: no configuration needed for either."""
    args.own_parser.print_help()
    if command == "flower":
        _print_flower_options()
        return 0
    print(f"\nOptions of `celery {command}`, passed on as they are:\n", flush=True)
    from celery import Celery

    try:
        Celery("jobexec").start(argv=[command, "--help"])
    except SystemExit as exc:  # click ends its help with exit 0
        return int(exc.code or 0)
    return 0


def _print_flower_options() -> None:
    # Flower's options are tornado's; their defaults are left out, as one is a random secret.
    from flower.options import options

    print("\nFlower's own options, passed on as they are (--name=value):\n")
    for option in sorted(options._options.values(), key=lambda o: o.name):
        if option.group_name.endswith(("flower/options.py", "flower\\options.py")):
            print(f"  --{option.name:<28} {option.help or ''}")


def _sigint_like_sigterm() -> None:
    """Ctrl-C stops a worker as SIGTERM does (cold, bounded), not by Celery's warm shutdown.

    Celery installs its SIGINT handler through this module-level name at start-up; pointing it
    at the SIGTERM handler (remapped to SIGQUIT's bounded shutdown) makes both signals one stop.
    """
    from functools import partial

    import celery.apps.worker as celery_worker

    celery_worker.install_worker_int_handler = partial(
        celery_worker.install_worker_term_handler, sig="SIGINT"
    )


def cmd_bridge(_args: argparse.Namespace) -> int:
    settings = _settings()
    settings.require("configs.kafka.bootstrap-servers")
    from bridge.consumer import Bridge

    bridge = Bridge.from_settings(settings)
    _serve_health(settings, bridge.health)
    bridge.run(_stop_on_signals())
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    if _asks_help(args.celery_args):
        return _help_with_celery_options(args, "worker")
    # Billiard reads this at import: SIGTERM becomes a soft-then-cold shutdown, bounded in time,
    # instead of a warm one that waits for the longest task.
    os.environ.setdefault("REMAP_SIGTERM", "SIGQUIT")
    # gevent's monkey patches first, before sockets, threads and the database driver are used,
    # as Celery's own `celery` script does it (app.start below does not).
    from celery import maybe_patch_concurrency

    try:
        maybe_patch_concurrency(["worker", *args.celery_args])
    except ImportError as exc:
        print(
            f"jobexec: the worker pool needs {exc.name}: pip install 'jobexec[gevent]'",
            file=sys.stderr,
        )
        return 2
    _sigint_like_sigterm()  # after the patches: it imports Celery's worker module
    settings = _settings()
    settings.require("configs.jobDb.url")
    from workers.celeryconf import celery_config

    celery_config(settings)  # a bad broker or Celery setting exits 2 before anything is logged
    celery = CelerySection.from_settings(settings)
    if MetricsSection.from_settings(settings).port:
        # Prefork children count in files here; the parent serves their sum.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="jobexec-metrics-")
        from jobexec.core.db.engine import database_url
        from jobexec.core.health import Health
        from workers.readiness import WorkerReadiness

        health = Health(stale_after=float("inf"))
        health.readiness = WorkerReadiness(celery.broker_url, database_url(settings))
        _serve_health(settings, health)
    from workers.app import app

    level = LoggingSection.from_settings(settings).level
    argv = [
        "worker",
        f"--loglevel={level}",  # a --loglevel given later wins
        *args.celery_args,
    ]
    if not _names_queues(args.celery_args):  # a user's -Q q1,q2 wins; else the default queue
        argv[1:1] = ["--queues", celery.queue]
    from celery.signals import worker_shutting_down

    asked: list[str] = []
    worker_shutting_down.connect(lambda sig, **_: asked.append(sig), weak=False)
    # app.start, not worker_main: the worker's exit status reaches the supervisor.
    code = int(app.start(argv=argv) or 0)
    from workers.lifecycle import executing

    if executing():
        # A try that ignored stop still holds a thread (threads pool): exit without joining it,
        # its outcome recorded or its message handed back already.
        log.warning(
            "%d tries still inside their executor; exiting without them",
            executing(),
            extra={"action": "worker_exit_abandoning"},
        )
        _exit_without_teardown(code or (0 if asked else 1))
    if code == 0 and not asked:
        # Celery returns 0 after some unrecoverable errors (a kombu crash on a Redis restart):
        # a worker that stopped without being asked has failed, so its supervisor restarts it.
        log.error("worker stopped without a signal; exiting 1", extra={"action": "worker_died"})
        code = 1
    _exit_without_teardown(code)


def _exit_without_teardown(code: int) -> NoReturn:
    """End a stopped worker once its exit handlers ran, skipping the interpreter's teardown.

    That teardown's last garbage collection, over every module a worker loads, took 1 to 2 s
    of the 10 s a stop may take on a loaded machine (py-spy: gc_collect_main, after Celery
    returned); exit handlers (logs, metrics files, traces) still run first.
    """
    atexit._run_exitfuncs()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


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
    if _asks_help(args.flower_args):
        return _help_with_celery_options(args, "flower")
    settings = _settings()
    login = flower_login(settings)
    # Set Flower's option directly, as a list of one login: FLOWER_BASIC_AUTH would be split on
    # `,` (a password `a,b` becoming two logins), and argv would show the password in `ps`.
    os.environ.pop("FLOWER_BASIC_AUTH", None)
    import flower.options  # noqa: F401 - defines the options set below
    from tornado.options import options

    options.basic_auth = [login]
    from workers.app import app

    listen = ListenSection.flower(settings)
    app.start(
        argv=[
            "flower",
            f"--address={listen.host}",
            f"--port={listen.port}",
            # kwargs hold job_id and attempt: an operator finds a job's runs in the list.
            "--tasks_columns=name,uuid,state,kwargs,received,started,runtime,worker,retries",
            *args.flower_args,
        ]
    )
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    settings = _settings()
    settings.require("configs.kafka.bootstrap-servers")
    from jobexec.core.db.engine import database_url, make_engine
    from jobexec.core.db.store import JobStore
    from jobexec.core.deadletter import DeadLetterWriter
    from jobexec.core.kafka import Connectivity, reliable_producer
    from scheduling.scheduler import Scheduler
    from scheduling.sweeper import Sweeper

    store = JobStore(make_engine(database_url(settings)))
    connection = Connectivity("scheduler")
    kafka = KafkaSection.from_settings(settings)
    producer = reliable_producer(kafka.client_properties(), connection)
    sweeper = Sweeper.from_settings(
        settings, store, DeadLetterWriter(producer, kafka.dead_letter_topic)
    )
    from jobexec.core.retention import PruneLoop

    scheduler = Scheduler.from_settings(
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

    from jobexec.core.db.engine import database_url, make_engine, masked
    from jobexec.core.db.migrate import upgrade
    from jobexec.core.masking import mask_text
    from jobexec.core.printable import printable

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
    from jobexec.core.config import KEYS

    settings = settings_or_exit()
    shown = settings.masked()
    for name, value in sorted(shown.items()):
        print(f"{name}={value}")
    # The rest are defaults: commented, so the output stays a loadable properties file.
    for key in sorted((k for k in KEYS if k.name not in shown), key=lambda k: k.name):
        if key.default is None:
            print(f"# {key.name}= (not set)")
        else:
            print(f"# {key.name}={key.default} (default)")
    return 0


def cmd_console(_args: argparse.Namespace) -> int:
    settings = _settings()
    settings.require("configs.jobDb.url")
    from jobexec.console.app import serve

    return serve(settings)


def cmd_dev(args: argparse.Namespace) -> int:
    configure("plain")
    from jobexec.cli.dev import run_dev

    return run_dev(args.dir, args.duration)


_LOCATION = (
    "Settings come from the .properties and .yml files named by EXECUTOR_CONFIG_LOCATION (or "
    "SPRING_CONFIG_LOCATION) and from environment variables (README: Configuration)."
)


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    details: str,
    **kwargs: object,
) -> argparse.ArgumentParser:
    """A sub-command whose `--help` shows its summary and what it needs."""
    text = f"{summary[0].upper()}{summary[1:]}. {details}"
    # Paragraphs wrapped, indented example lines kept as they are.
    paragraphs = [p if p.startswith("  ") else textwrap.fill(p, 88) for p in text.split("\n\n")]
    return sub.add_parser(
        name,
        help=summary,
        description="\n\n".join(paragraphs),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,  # type: ignore[arg-type]
    )


def _describe_rest(action: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Give every sub-command without a description its one-line help as one."""
    helps = {choice.dest: choice.help for choice in action._choices_actions}
    for name, sub_parser in action.choices.items():
        if sub_parser.description is None and helps.get(name):
            sub_parser.description = str(helps[name])
        for nested in sub_parser._actions:
            if isinstance(nested, argparse._SubParsersAction):
                _describe_rest(nested)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="jobexec",
        description="Executor service for scheduled jobs. " + _LOCATION,
    )
    sub = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _command(
        sub,
        "bridge",
        "consume JobEvents from Kafka and enqueue Celery tasks",
        "Needs configs.kafka.bootstrap-servers, the Celery broker and the job database. "
        "SIGTERM or Ctrl-C stops it within 10 s, its offsets committed. " + _LOCATION,
    ).set_defaults(func=cmd_bridge)
    worker = _command(
        sub,
        "worker",
        "run a Celery worker that executes the jobs' tries",
        "Needs configs.jobDb.url and the Celery broker. Every option after `worker` is Celery's "
        "own and passed on as it is, for example\n\n"
        "  jobexec worker --concurrency 8 --pool threads -Q jobs,emails\n\n"
        "SIGTERM or Ctrl-C stops it within 10 s; running tries are handed back to the queue. "
        + _LOCATION,
        prefix_chars="\0",  # every option after `worker` belongs to Celery
        add_help=False,
    )
    worker.add_argument("celery_args", nargs=argparse.REMAINDER, metavar="CELERY_OPTION")
    worker.set_defaults(func=cmd_worker, own_parser=worker)
    flower = _command(
        sub,
        "flower",
        "run Flower, the Celery monitor, behind basic auth",
        "Needs secrets.flower.username and secrets.flower.password; binds configs.flower.address "
        "and configs.flower.port. Every option after `flower` is Flower's own and passed on as it "
        "is, for example\n\n  jobexec flower --url_prefix=flower\n\n" + _LOCATION,
        prefix_chars="\0",
        add_help=False,
    )
    flower.add_argument("flower_args", nargs=argparse.REMAINDER, metavar="FLOWER_OPTION")
    flower.set_defaults(func=cmd_flower, own_parser=flower)
    scheduler = _command(
        sub,
        "scheduler",
        "claim due jobs and publish their JobEvents",
        "Also sweeps abandoned runs. Several schedulers may run at once. Needs the job database "
        "and Kafka. " + _LOCATION,
    )
    scheduler.add_argument(
        "--sweep-only",
        action="store_true",
        help="only re-dispatch abandoned runs, beside the existing system's scheduler",
    )
    scheduler.set_defaults(func=cmd_scheduler)
    db = _command(sub, "db", "job database schema", "Needs configs.jobDb.url. " + _LOCATION)
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    db_sub.add_parser(
        "upgrade",
        help="create or migrate the schema (safe to repeat)",
        description="Create or migrate the schema of configs.jobDb.url: jobs, job_runs, "
        "dlq_replays and the migration table. Safe to repeat.",
    ).set_defaults(func=cmd_db_upgrade)
    _command(
        sub,
        "config",
        "print every effective setting, secrets masked",
        "Settings that are set print as key=value; those left at their default print commented, "
        "as '# key=value (default)', so the output is itself a valid properties file. " + _LOCATION,
    ).set_defaults(func=cmd_config)
    _command(
        sub,
        "console",
        "the operator's web console: jobs, run history, actions, dead letters",
        "Serves the web console on configs.console.host:configs.console.port, behind basic auth "
        "from secrets.console.username and secrets.console.password. " + _LOCATION,
    ).set_defaults(func=cmd_console)
    dev = _command(
        sub,
        "dev",
        "run everything on this machine with embedded Kafka, Redis and SQLite",
        "Starts scheduler, bridge, worker and Flower (a random login, printed) with a demo job, "
        "and shows the jobs and their latest runs. Needs no configuration: "
        "pip install -e '.[dev]'. Ctrl-C stops everything.",
    )
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
    from jobexec.cli.commands import dlq, jobs  # operator commands: the jobs table and the DLT

    jobs.register(sub)
    dlq.register(sub)
    _describe_rest(sub)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"jobexec: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C on a short command (jobs, dlq, db upgrade) ends it as SIGTERM would, quietly.
        print("jobexec: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    return code


if __name__ == "__main__":
    sys.exit(main())
