"""Typed sections of the settings: each concern's values, read once where a process starts.

`Settings` parses and validates every key when it loads; a section picks one concern's keys
out of it, converts units (milliseconds to seconds or timedeltas) and checks what only that
concern needs, raising ConfigError naming the key. The `from_settings` at a process's edge (a
command, a worker bootstep, an executor's constructor) builds the sections it needs and hands
their values on: the code that runs receives values, never keys to look up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from jobexec.core.config import ConfigError, Settings

BOOTSTRAP_KEY = "configs.kafka.bootstrap-servers"
JOB_DB_URL_KEY = "configs.jobDb.url"
TRACING_ENDPOINT_KEY = "configs.tracing.otlp-endpoint"
SMTP_TLS_KEY = "configs.smtp.tls"
SMTP_PORT_KEY = "configs.smtp.port"
ALLOWED_HOSTS_KEY = "configs.executors.http.allowed-hosts"
METRICS_PORT_KEY = "configs.metrics.port"
IMPLICIT_TLS_PORT = 465  # SMTPS, used with configs.smtp.tls=ssl when no port is set


def _seconds(milliseconds: int) -> float:
    return milliseconds / 1000


@dataclass(frozen=True)
class KafkaSection:
    """Where JobEvents and dead letters go, and how every Kafka client connects."""

    bootstrap_servers: str | None
    job_events_topic: str
    dead_letter_topic: str
    bootstrap_source: str = ""
    # librdkafka properties (bootstrap plus passthrough ones); empty without bootstrap servers
    properties: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> KafkaSection:
        bootstrap: str | None = settings.get(BOOTSTRAP_KEY) or None
        return cls(
            bootstrap_servers=bootstrap,
            job_events_topic=settings.get("configs.kafka.topic.job-events"),
            dead_letter_topic=settings.dead_letter_topic,
            bootstrap_source=settings.source(BOOTSTRAP_KEY),
            properties=settings.kafka_client_properties if bootstrap else {},
        )

    def client_properties(self) -> dict[str, str]:
        """librdkafka properties of a client; ConfigError when no bootstrap servers are set."""
        if not self.bootstrap_servers:
            raise ConfigError(BOOTSTRAP_KEY, "is missing", self.bootstrap_source)
        return dict(self.properties)


@dataclass(frozen=True)
class BridgeSection:
    """The bridge's Kafka consumer and its back-pressure on the Celery queue."""

    group_id: str
    auto_offset_reset: str
    max_poll_records: int
    session_timeout_ms: int
    max_poll_interval_ms: int
    fetch_max_wait_ms: int
    commit_interval_ms: int
    max_queue_depth: int

    @classmethod
    def from_settings(cls, settings: Settings) -> BridgeSection:
        return cls(
            group_id=settings.get("configs.kafka.consumer.group-id"),
            auto_offset_reset=settings.get("configs.kafka.consumer.auto-offset-reset"),
            max_poll_records=settings.get("configs.kafka.consumer.max-poll-records"),
            session_timeout_ms=settings.get("configs.kafka.consumer.session-timeout-ms"),
            max_poll_interval_ms=settings.get("configs.kafka.consumer.max-poll-interval-ms"),
            fetch_max_wait_ms=settings.get("configs.kafka.consumer.fetch-max-wait-ms"),
            commit_interval_ms=settings.get("configs.bridge.commit-interval-ms"),
            max_queue_depth=settings.get("configs.bridge.max-queue-depth"),
        )


@dataclass(frozen=True)
class CelerySection:
    """The Celery broker and the default queue the bridge fills and workers drain."""

    # secrets.celery.broker-password put in: what kombu connects to
    broker_url: str = field(repr=False)
    # as configs.celery.broker-url has it, checked at start (it may hold a password too)
    configured_broker_url: str = field(repr=False)
    queue: str
    queue_type: str
    prefetch_multiplier: int

    @classmethod
    def from_settings(cls, settings: Settings) -> CelerySection:
        return cls(
            broker_url=settings.broker_url,
            configured_broker_url=settings.get("configs.celery.broker-url"),
            queue=settings.get("configs.celery.queue"),
            queue_type=settings.get("configs.celery.queue-type"),
            prefetch_multiplier=settings.get("configs.celery.prefetch-multiplier"),
        )


@dataclass(frozen=True)
class RetrySection:
    """How often a run is tried and how long its retries wait (seconds)."""

    max_attempts: int
    initial_backoff: float
    max_backoff: float

    @classmethod
    def from_settings(cls, settings: Settings) -> RetrySection:
        return cls(
            max_attempts=settings.get("configs.retry.max-attempts"),
            initial_backoff=_seconds(settings.get("configs.retry.initial-backoff-ms")),
            max_backoff=_seconds(settings.get("configs.retry.max-backoff-ms")),
        )


@dataclass(frozen=True)
class LeaseSection:
    """How long a claimed try is held, how often it is renewed and how often lost ones are
    taken over (seconds; 0 = never)."""

    duration: timedelta
    heartbeat: float
    rescue_interval: float

    @classmethod
    def from_settings(cls, settings: Settings) -> LeaseSection:
        return cls(
            duration=timedelta(milliseconds=settings.get("configs.lease.duration-ms")),
            heartbeat=_seconds(settings.get("configs.lease.heartbeat-ms")),
            rescue_interval=_seconds(settings.get("configs.lease.rescue-interval-ms")),
        )


@dataclass(frozen=True)
class SchedulerSection:
    """Due jobs claimed per statement, and the scheduler's longest idle sleep (seconds)."""

    batch_size: int
    max_sleep: float

    @classmethod
    def from_settings(cls, settings: Settings) -> SchedulerSection:
        return cls(
            batch_size=settings.get("configs.scheduler.batch-size"),
            max_sleep=_seconds(settings.get("configs.scheduler.max-sleep-ms")),
        )


@dataclass(frozen=True)
class SweeperSection:
    """When a RUNNING job with no live lease counts as abandoned, and how often to look."""

    abandoned_after: timedelta
    interval: float  # seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> SweeperSection:
        return cls(
            abandoned_after=timedelta(
                milliseconds=settings.get("configs.sweeper.abandoned-after-ms")
            ),
            interval=_seconds(settings.get("configs.sweeper.interval-ms")),
        )


@dataclass(frozen=True)
class ExecutorsSection:
    """What every executor's tries share: the global time limit and the stop grace (seconds).

    Per-task limits and caps are read for the registry's tasks (workers.limits).
    """

    max_run_seconds: float
    cancel_grace: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ExecutorsSection:
        return cls(
            max_run_seconds=settings.get("configs.executors.max-run-seconds"),
            cancel_grace=_seconds(settings.get("configs.executors.cancel-grace-ms")),
        )


@dataclass(frozen=True)
class HttpSection:
    """The http executor's host allow-list, as written (comma-separated)."""

    allowed_hosts: str
    allowed_hosts_source: str

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpSection:
        return cls(
            allowed_hosts=settings.get(ALLOWED_HOSTS_KEY),
            allowed_hosts_source=settings.source(ALLOWED_HOSTS_KEY),
        )


@dataclass(frozen=True)
class SmtpSection:
    """The send_email executor's server, transport and login."""

    host: str
    port: int
    tls: str
    sender: str
    username: str | None = None
    password: str = field(default="", repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpSection:
        """ConfigError naming configs.smtp.tls when credentials would be sent in the clear."""
        tls: str = settings.get(SMTP_TLS_KEY)
        implicit = tls == "ssl" and settings.lookup(SMTP_PORT_KEY) is None
        section = cls(
            host=settings.get("configs.smtp.host"),
            port=IMPLICIT_TLS_PORT if implicit else settings.get(SMTP_PORT_KEY),
            tls=tls,
            sender=settings.get("configs.smtp.from"),
            username=settings.get("secrets.smtp.username") or None,
            password=settings.get("secrets.smtp.password") or "",
        )
        if tls == "none" and (section.username or section.password):
            raise ConfigError(
                SMTP_TLS_KEY,
                "is none, but secrets.smtp.username or secrets.smtp.password is set: "
                "credentials are only sent over TLS (starttls or ssl)",
                settings.source(SMTP_TLS_KEY),
            )
        return section


@dataclass(frozen=True)
class JobDbSection:
    """The job database as configured; jobexec.core.db.engine makes the URL from it."""

    url: str | None
    name: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> JobDbSection:
        return cls(
            url=settings.get(JOB_DB_URL_KEY) or None,
            name=settings.get("configs.jobDb.name"),
            username=settings.get("secrets.datasource.username"),
            password=settings.get("secrets.datasource.password"),
        )


@dataclass(frozen=True)
class HistorySection:
    """How long finished history is kept, and how often it is pruned (seconds; 0 = never)."""

    retention: timedelta
    prune_interval: float

    @classmethod
    def from_settings(cls, settings: Settings) -> HistorySection:
        return cls(
            retention=timedelta(days=settings.get("configs.history.retention-days")),
            prune_interval=_seconds(settings.get("configs.history.prune-interval-ms")),
        )


@dataclass(frozen=True)
class MetricsSection:
    """The metrics and health server: its address and port (0 = off)."""

    host: str
    port: int
    port_source: str  # where the port was set, named when it cannot be bound

    @classmethod
    def from_settings(cls, settings: Settings) -> MetricsSection:
        return cls(
            host=settings.get("configs.metrics.host"),
            port=settings.get(METRICS_PORT_KEY),
            port_source=settings.source(METRICS_PORT_KEY),
        )


@dataclass(frozen=True)
class TracingSection:
    """Span export: the OTLP/HTTP collector (None = off) and the service name, if set."""

    endpoint: str | None
    service_name: str | None
    endpoint_source: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> TracingSection:
        return cls(
            endpoint=settings.get(TRACING_ENDPOINT_KEY) or None,
            service_name=settings.get("configs.tracing.service-name") or None,
            endpoint_source=settings.source(TRACING_ENDPOINT_KEY),
        )


@dataclass(frozen=True)
class LoggingSection:
    """How log lines look (plain or json) and the least severe level written."""

    format: str
    level: str

    @classmethod
    def from_settings(cls, settings: Settings) -> LoggingSection:
        return cls(
            format=settings.get("configs.log.format"),
            level=settings.get("configs.logging.level"),
        )


@dataclass(frozen=True)
class ListenSection:
    """The address and port a web process binds: `jobexec console` or `jobexec flower`."""

    host: str
    port: int

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @classmethod
    def console(cls, settings: Settings) -> ListenSection:
        return cls(settings.get("configs.console.host"), settings.get("configs.console.port"))

    @classmethod
    def flower(cls, settings: Settings) -> ListenSection:
        return cls(settings.get("configs.flower.address"), settings.get("configs.flower.port"))
