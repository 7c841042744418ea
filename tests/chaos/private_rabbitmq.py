"""A rabbitmq-server node of one test only, which the test may stop and start again.

The shared RabbitMQ on 5672 is never touched: this node has its own name, AMQP and
distribution ports, Erlang cookie (`$HOME/.erlang.cookie`, HOME being the test's directory),
configuration, plugin list, database and logs, all under the test's directory. It registers
with the machine's epmd as any node does. Restarting it on the same directories keeps its
durable queues and their persistent messages.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import IO

from kombu.connection import Connection

from jobexec.testing.network import free_port
from jobexec.testing.waiting import wait_until

# Debian's rabbitmq-server package: the scripts themselves, not /usr/sbin's wrappers, which
# switch to the rabbitmq user and cd into its home.
SCRIPTS = Path("/usr/lib/rabbitmq/bin")
# A first boot creates the node's database; on a loaded 2-core machine that takes a minute.
START_TIMEOUT_S = 180.0


def rabbitmq_missing() -> str | None:
    """Why no private node can start here, or None when it can."""
    if not (SCRIPTS / "rabbitmq-server").is_file():
        return f"no {SCRIPTS}/rabbitmq-server (Debian's rabbitmq-server package)"
    if shutil.which("erl") is None:
        return "no Erlang runtime (erl) on PATH"
    return None


class PrivateRabbitMQ:
    """One RabbitMQ node in `directory`, on ports of its own."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.node = f"jobexec-chaos-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def environment(self) -> dict[str, str]:
        d = self.directory
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(d),  # the Erlang cookie of this node and of its CLI
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            # Every file the node reads or writes is ours: /etc/rabbitmq names the shared node.
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(d / "plugins-expand"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def start(self, timeout: float = START_TIMEOUT_S) -> float:
        """Start the node (again, on the same directories); returns the seconds until AMQP
        answered."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "rabbitmq-env.conf").write_text("")
        (self.directory / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
        )
        (self.directory / "enabled_plugins").write_text("[].\n")
        self._log = open(self.directory / "server.log", "ab")  # noqa: SIM115 - closed in _reap
        began = time.monotonic()
        self._proc = subprocess.Popen(
            [str(SCRIPTS / "rabbitmq-server")],
            env=self.environment(),
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: the Erlang VM and epmd-less helpers with it
        )
        wait_until(
            self._answers,
            timeout,
            interval=0.2,
            message=lambda: f"{self.node} not up\n{self.log()}",
        )
        return time.monotonic() - began

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the node cleanly, as `rabbitmqctl stop` does: SIGTERM to the Erlang VM."""
        pid = self._vm_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not _alive(pid), timeout, interval=0.1, message="rabbit not down")
        self._reap()

    def crash(self) -> None:
        """SIGKILL the node's whole process group: only what it had written to disk survives."""
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
        self._reap()

    def close(self) -> None:
        """Whatever state the test left it in: gone, its ports free."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(Exception):
                self.stop(timeout=30)
        self.crash()

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def _vm_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError):
            return int((self.directory / "rabbitmq.pid").read_text().strip())
        return None

    def _reap(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(10)
            self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        with contextlib.suppress(OSError):
            (self.directory / "rabbitmq.pid").unlink()

    def _answers(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            raise AssertionError(f"rabbitmq-server {self.node} exited\n{self.log()}")
        try:
            with Connection(self.url, connect_timeout=2) as conn:
                conn.connect()
                return True
        except Exception:
            return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
