"""The `jobexec` console script as a subprocess, the way an operator or an orchestrator runs it."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from jobexec.testing.waiting import wait_until


def terminate(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM a server the tests started, SIGKILL if it outlives `timeout`; reaped either way."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


def jobexec_executable() -> str:
    """The `jobexec` script installed beside the running interpreter, else the one on PATH."""
    beside = Path(sys.prefix) / "bin" / "jobexec"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    on_path = shutil.which("jobexec")
    if on_path:
        return on_path
    raise AssertionError(
        f"no `jobexec` script at {beside} or on PATH: install the project "
        "(`pip install -e '.[test]'`) into the environment that runs pytest"
    )


class RunningProcess:
    """A process started in its own process group, its stdout and stderr in one log file."""

    def __init__(
        self, argv: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path | None
    ) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log: IO[bytes] = open(log_path, "wb")  # noqa: SIM115 - closed by _reap
        self.proc = subprocess.Popen(
            self.argv,
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: Ctrl-C-like signals and cleanup reach all
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.poll()

    def running(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """Wait until the log matches the regular expression; fail early if the process dies."""
        regex = re.compile(pattern)

        def matched() -> re.Match[str] | None:
            found = regex.search(self.log())
            if found is None and not self.running():
                raise AssertionError(
                    f"{self.argv} exited with {self.returncode} before logging "
                    f"{pattern!r}\n{self.log()}"
                )
            return found

        found = wait_until(
            matched,
            timeout,
            interval=0.2,
            message=lambda: f"{self.argv} did not log {pattern!r}\n{self.log()}",
        )
        assert found is not None
        return found

    def send_signal(self, sig: int) -> None:
        """Send a signal to the main process only, as `docker stop` or `kill PID` does."""
        if self.running():
            self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the process and return its exit status; fail if it outlives `timeout`."""
        self.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.argv} still running {timeout:g}s after signal {sig}; killed\n{self.log()}"
            ) from None

    def end(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        """Signal the process, then SIGKILL its whole group (pool children included) if it
        outlives `timeout`; never fails, for harnesses that stop what they measured."""
        self.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL the whole process group, the way a crash or OOM kill ends it."""
        self._signal_group(signal.SIGKILL)
        self.proc.wait(10)

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def _reap(self, grace: float = 10.0) -> None:
        """End the process and anything it left in its group (pool children, brokers)."""
        if self.running():
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        # Children can outlive the main process; the group is theirs too.
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(grace)
        self._log.close()


def worker_args(concurrency: int, pool: str = "prefork", hostname: str | None = None) -> list[str]:
    """`jobexec worker` arguments: `concurrency` slots of `pool`, INFO logs, a node name."""
    args = ["worker", "--concurrency", str(concurrency), "--pool", pool, "--loglevel", "INFO"]
    return args if hostname is None else [*args, "--hostname", hostname]


def wait_ready(process: RunningProcess, topic: str, timeout: float = 60.0) -> None:
    """Wait until a worker (`jobexec worker` or `celery worker`) says it is ready, a bridge has
    partitions of `topic`, or any other command (the scheduler) names `topic`."""
    if "worker" in process.argv:
        process.wait_for_log(r"@\S+ ready", timeout=timeout)
    elif "bridge" in process.argv:
        process.wait_for_log(r"assigned .*" + re.escape(topic) + r"\[\d+\]", timeout=timeout)
    else:
        process.wait_for_log(re.escape(topic), timeout=timeout)


class Cli:
    """Starts `jobexec` commands for one test and cleans every one of them up after it."""

    def __init__(self, log_dir: Path, cwd: Path | None = None) -> None:
        self.log_dir = log_dir
        self.cwd = cwd
        self.processes: list[RunningProcess] = []

    def start(self, *args: str, env: Mapping[str, str], name: str | None = None) -> RunningProcess:
        """Start `jobexec ARGS...` in the background."""
        return self.spawn([jobexec_executable(), *args], env=env, name=name or "-".join(args))

    def spawn(
        self, argv: Sequence[str], env: Mapping[str, str], name: str | None = None
    ) -> RunningProcess:
        """Start any command (`celery -A workers.app worker`, say) with the same cleanup."""
        label = re.sub(r"[^A-Za-z0-9_.-]+", "_", name or Path(argv[0]).name)[:60] or "process"
        log_path = self.log_dir / f"{len(self.processes):02d}-{label}.log"
        process = RunningProcess(argv, env, log_path, self.cwd)
        self.processes.append(process)
        return process

    def run(
        self, *args: str, env: Mapping[str, str], timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run `jobexec ARGS...` to completion, output captured as text."""
        return subprocess.run(
            [jobexec_executable(), *args],
            env=dict(env),
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def cleanup(self, show_logs: bool) -> None:
        for process in self.processes:
            process._reap()
        if show_logs:
            for process in self.processes:
                print(f"\n----- {' '.join(process.argv)} (exit {process.returncode}) -----")
                print(process.log(), end="")
