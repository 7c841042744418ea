"""Configuration: `.properties` and YAML files plus environment overrides, as Spring Boot has it.

Files come from `EXECUTOR_CONFIG_LOCATION` (or `SPRING_CONFIG_LOCATION`), comma-separated, later
files overriding earlier ones (`config_sources`). An environment variable overrides any
file by Spring's relaxed binding: `configs.kafka.bootstrap-servers` is
`CONFIGS_KAFKA_BOOTSTRAPSERVERS`. `${name:default}` placeholders are resolved against the
settings and the environment (jobexec/core/placeholders.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from jobexec.core.config_error import ConfigError as ConfigError
from jobexec.core.config_sources import config_files as config_files
from jobexec.core.config_sources import join_lists, read_file
from jobexec.core.masking import MASK, is_secret_key, mask_text
from jobexec.core.placeholders import Placeholders

KAFKA_PROPERTIES_PREFIXES = ("configs.kafka.properties.", "secrets.kafka.properties.")


def _whole_number(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("expected a whole number") from None


def _positive_int(raw: str) -> int:
    value = _whole_number(raw)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _non_negative_int(raw: str) -> int:
    value = _whole_number(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def positive_seconds(raw: str) -> float:
    """A positive, finite number of seconds (`30`, `0.5`): time limits."""
    try:
        value = float(raw.strip())
    except (ValueError, OverflowError):
        raise ValueError("expected a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise ValueError("must be a positive number of seconds")
    return value


def _port(raw: str) -> int:
    value = _whole_number(raw)
    if not 1 <= value <= 65535:
        raise ValueError("must be a port, 1 to 65535")
    return value


def _port_or_off(raw: str) -> int:
    value = _whole_number(raw)
    if not 0 <= value <= 65535:
        raise ValueError("must be a port, 1 to 65535, or 0 for off")
    return value


def _text(raw: str) -> str:
    return raw.strip()


def _http_url(raw: str) -> str:
    value = raw.strip()
    parts = urlsplit(value)
    if value and (parts.scheme not in {"http", "https"} or not parts.hostname):
        raise ValueError("must be an http:// or https:// URL, e.g. http://localhost:4318")
    return value


def _offset_reset(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"earliest", "latest", "none"}:
        raise ValueError("must be earliest, latest or none")
    return value


def _queue_type(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"classic", "quorum"}:
        raise ValueError("must be classic or quorum")
    return value


def _log_format(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"plain", "json"}:
        raise ValueError("must be plain or json")
    return value


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value == "WARN":  # Spring's and logback's name
        value = "WARNING"
    if value not in _LOG_LEVELS:
        raise ValueError("must be one of DEBUG, INFO, WARN, ERROR, CRITICAL")
    return value


def _smtp_tls(raw: str) -> str:
    value = raw.strip().lower()
    if value not in {"starttls", "ssl", "none"}:
        raise ValueError("must be starttls, ssl or none")
    return value


@dataclass(frozen=True)
class Key:
    name: str
    default: str | None
    parse: Callable[[str], Any]
    doc: str


# Every setting jobexec reads; the README's settings table is generated from the same facts.
KEYS: tuple[Key, ...] = (
    Key("configs.jobDb.url", None, _text, "JDBC or SQLAlchemy URL of the job database"),
    Key("configs.jobDb.name", "jobs", _text, "database name appended to a JDBC URL without one"),
    Key("secrets.datasource.username", None, _text, "job database user"),
    Key("secrets.datasource.password", None, _text, "job database password"),
    Key("configs.kafka.bootstrap-servers", None, _text, "Kafka bootstrap servers"),
    Key("configs.kafka.topic.job-events", "job-events", _text, "topic of JobEvents"),
    Key("configs.kafka.topic.dead-letter", None, _text, "dead-letter topic [<job-events>.DLT]"),
    Key("configs.kafka.consumer.group-id", "job-consumers", _text, "bridge consumer group"),
    Key("configs.kafka.consumer.auto-offset-reset", "earliest", _offset_reset, "offset reset"),
    Key("configs.kafka.consumer.max-poll-records", "500", _positive_int, "records per poll"),
    Key("configs.kafka.consumer.session-timeout-ms", "45000", _positive_int, "session timeout"),
    Key("configs.kafka.consumer.max-poll-interval-ms", "300000", _positive_int, "poll interval"),
    Key("configs.kafka.consumer.fetch-max-wait-ms", "500", _positive_int, "fetch.wait.max.ms"),
    Key("configs.retry.max-attempts", "3", _positive_int, "tries of one run, the first included"),
    Key("configs.retry.initial-backoff-ms", "1000", _positive_int, "first retry delay"),
    Key("configs.retry.max-backoff-ms", "60000", _positive_int, "longest retry delay"),
    Key("configs.celery.broker-url", "redis://localhost:6379/0", _text, "Celery broker URL"),
    Key("secrets.celery.broker-password", None, _text, "password put into the broker URL"),
    Key("configs.celery.queue", "jobs", _text, "queue the bridge fills and workers drain"),
    Key("configs.celery.queue-type", "classic", _queue_type, "RabbitMQ queues: classic or quorum"),
    Key("configs.celery.prefetch-multiplier", "1", _positive_int, "worker prefetch multiplier"),
    Key("configs.bridge.max-queue-depth", "10000", _positive_int, "pause the bridge above it"),
    Key("configs.bridge.commit-interval-ms", "1000", _positive_int, "offset commit cadence"),
    Key("configs.lease.duration-ms", "60000", _positive_int, "how long a claimed run is held"),
    Key("configs.lease.heartbeat-ms", "15000", _positive_int, "lease renewal period"),
    Key(
        "configs.lease.rescue-interval-ms",
        "5000",
        _non_negative_int,
        "how often each worker takes over tries whose lease expired; 0 = never",
    ),
    Key("configs.scheduler.max-sleep-ms", "1000", _positive_int, "longest scheduler idle sleep"),
    Key("configs.scheduler.batch-size", "500", _positive_int, "due jobs claimed per statement"),
    Key(
        "configs.sweeper.abandoned-after-ms",
        "300000",
        _positive_int,
        "re-dispatch a RUNNING job with no live lease for this long",
    ),
    Key("configs.sweeper.interval-ms", "10000", _positive_int, "how often the sweeper looks"),
    Key("configs.executors.http.allowed-hosts", "", _text, "http executor host allow-list"),
    Key(
        "configs.executors.max-run-seconds",
        "3600",
        positive_seconds,
        "time limit of one try; configs.executors.<task>.max-run-seconds per task",
    ),
    Key(
        "configs.executors.cancel-grace-ms",
        "10000",
        _positive_int,
        "how long a try told to stop may take before its process is ended or it is abandoned",
    ),
    Key("configs.smtp.host", "localhost", _text, "SMTP server for send_email"),
    Key("configs.smtp.port", "25", _port, "SMTP port [465 with configs.smtp.tls=ssl]"),
    Key("configs.smtp.tls", "starttls", _smtp_tls, "SMTP TLS: starttls, ssl (implicit) or none"),
    Key("configs.smtp.from", "jobexec@localhost", _text, "sender address of send_email"),
    Key("secrets.smtp.username", None, _text, "SMTP user"),
    Key("secrets.smtp.password", None, _text, "SMTP password"),
    Key("configs.log.format", "plain", _log_format, "plain or json log lines"),
    Key("configs.logging.level", "INFO", _log_level, "least severe log level written"),
    Key("configs.flower.address", "127.0.0.1", _text, "address `jobexec flower` binds"),
    Key("configs.flower.port", "5555", _port, "port of `jobexec flower`"),
    Key("secrets.flower.username", None, _text, "Flower basic-auth user"),
    Key("secrets.flower.password", None, _text, "Flower basic-auth password"),
    Key("configs.metrics.port", "0", _port_or_off, "metrics and health port; 0 = off"),
    Key("configs.metrics.host", "127.0.0.1", _text, "address the metrics/health server binds"),
    Key(
        "configs.history.retention-days",
        "30",
        _positive_int,
        "finished rows of job_runs and dlq_replays are kept this many days",
    ),
    Key(
        "configs.history.prune-interval-ms",
        "3600000",
        _non_negative_int,
        "how often the scheduler and the workers prune old history; 0 = never",
    ),
    Key(
        "configs.tracing.otlp-endpoint",
        None,
        _http_url,
        "OTLP/HTTP collector spans are exported to (/v1/traces appended); unset = tracing off",
    ),
    Key("configs.tracing.service-name", None, _text, "service.name of spans [jobexec-<process>]"),
    Key("configs.console.host", "127.0.0.1", _text, "address `jobexec console` binds"),
    Key("configs.console.port", "8080", _port, "port of `jobexec console`"),
    Key("secrets.console.username", None, _text, "console basic-auth user"),
    Key("secrets.console.password", None, _text, "console basic-auth password"),
)
_KEYS_BY_CANON = {k.name.lower().replace("-", ""): k for k in KEYS}


def relaxed_env_name(key: str) -> str:
    """Spring Boot's environment-variable name of a property key."""
    return key.upper().replace(".", "_").replace("-", "")


def is_secret(key: str) -> bool:
    """Whether a setting's value is masked: anything under `secrets.`, or a secret-sounding key."""
    if key in _NOT_SECRET:
        return False
    return key.lower().startswith("secrets.") or is_secret_key(key)


# Known keys whose names hold a secret word but whose values are plain numbers.
_NOT_SECRET = frozenset({"configs.kafka.consumer.session-timeout-ms"})


def mask_url_password(value: str) -> str:
    """Hide the secrets written inside a value: a URL's password, `?password=`, `token=`."""
    return mask_text(value)


def _canon(key: str) -> str:
    return key.lower().replace("-", "")


@dataclass(frozen=True)
class RawConfig:
    """Property values by canonical key, each with the place it came from."""

    values: dict[str, tuple[str, str]] = field(default_factory=dict)
    kafka_properties: dict[str, tuple[str, str]] = field(default_factory=dict)
    files: tuple[str, ...] = ()
    secret_kafka_properties: set[str] = field(default_factory=set)
    # CONFIGS_* and SECRETS_* variables by name, for keys jobexec itself does not know (plugins').
    env: dict[str, str] = field(default_factory=dict)
    placeholders: Placeholders | None = None


def read_raw(environ: Mapping[str, str]) -> RawConfig:
    raw = RawConfig()
    files = config_files(environ)
    for path in files:
        for name, value in join_lists(read_file(path)).items():
            _put(raw, name, value, str(path))
    for name, value in environ.items():
        upper = name.upper()
        for prefix in KAFKA_PROPERTIES_PREFIXES:
            env_prefix = relaxed_env_name(prefix)
            if upper.startswith(env_prefix) and len(upper) > len(env_prefix):
                prop = upper[len(env_prefix) :].lower().replace("_", ".")
                raw.kafka_properties[prop] = (value, f"environment variable {name}")
                if prefix.startswith("secrets."):
                    raw.secret_kafka_properties.add(prop)
    for key in KEYS:
        env_name = relaxed_env_name(key.name)
        if env_name in environ:
            raw.values[_canon(key.name)] = (environ[env_name], f"environment variable {env_name}")
    env = {k: v for k, v in environ.items() if k.upper().startswith(("CONFIGS_", "SECRETS_"))}
    placeholders = Placeholders(
        {canon: value for canon, (value, _src) in raw.values.items()},
        {_canon(k.name): k.default for k in KEYS if k.default is not None},
        environ,
        _canon,
    )
    # Every known key and Kafka property is used, so resolved now; plugins' keys on lookup.
    for key in KEYS:
        found = raw.values.get(_canon(key.name))
        if found:
            resolved = placeholders.resolve(key.name, found[0], found[1])
            raw.values[_canon(key.name)] = (resolved, found[1])
    for prop, (value, source) in raw.kafka_properties.items():
        raw.kafka_properties[prop] = (placeholders.resolve(prop, value, source), source)
    return RawConfig(
        raw.values,
        raw.kafka_properties,
        tuple(str(p) for p in files),
        raw.secret_kafka_properties,
        env,
        placeholders,
    )


def _put(raw: RawConfig, key: str, value: str, source: str) -> None:
    for prefix in KAFKA_PROPERTIES_PREFIXES:
        if key.startswith(prefix):
            prop = key[len(prefix) :]
            raw.kafka_properties[prop] = (value, source)
            if prefix.startswith("secrets."):
                raw.secret_kafka_properties.add(prop)
            return
    raw.values[_canon(key)] = (value, source)


class Settings:
    """Typed view of the configuration. `get` parses a key; `require` insists it is set."""

    def __init__(self, raw: RawConfig) -> None:
        self._raw = raw
        self._cache: dict[str, Any] = {}
        for key in KEYS:  # validate every given value up front: a typo fails at start-up
            self.get(key.name)
        self._check_relations()

    def _check_relations(self) -> None:
        lease = self.get("configs.lease.duration-ms")
        if self.get("configs.lease.heartbeat-ms") * 2 > lease:
            # One missed beat must not lose the lease of a run that is still going.
            raise ConfigError(
                "configs.lease.heartbeat-ms",
                f"must be at most half of configs.lease.duration-ms ({lease})",
                self.source("configs.lease.heartbeat-ms"),
            )

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return cls(read_raw(os.environ if environ is None else environ))

    @property
    def files(self) -> tuple[str, ...]:
        return self._raw.files

    def source(self, name: str) -> str:
        found = self._raw.values.get(_canon(name))
        if found:
            return found[1]
        if self._raw.files:
            return "not set in " + ", ".join(self._raw.files) + " nor the environment"
        return "no configuration file given; set EXECUTOR_CONFIG_LOCATION or " + relaxed_env_name(
            name
        )

    def get(self, name: str) -> Any:
        if name in self._cache:
            return self._cache[name]
        key = _KEYS_BY_CANON[_canon(name)]
        found = self._raw.values.get(_canon(name))
        text = found[0] if found else key.default
        value = None
        if text is not None:
            try:
                value = key.parse(text)
            except ValueError as exc:
                shown = MASK if is_secret(name) else repr(mask_text(text))
                raise ConfigError(name, f"is invalid: {shown} ({exc})", self.source(name)) from None
        self._cache[name] = value
        return value

    def lookup(self, name: str, default: str | None = None) -> str | None:
        """Any property as text, by the same file and environment rules: for plugins' own keys."""
        env_name = relaxed_env_name(name)
        if env_name in self._raw.env:
            value, source = self._raw.env[env_name], f"environment variable {env_name}"
        else:
            found = self._raw.values.get(_canon(name))
            if not found:
                return default
            value, source = found
        if self._raw.placeholders is None:
            return value
        return self._raw.placeholders.resolve(name, value, source)

    def under(self, prefix: str) -> dict[str, tuple[str, str]]:
        """Every file value whose key starts with `prefix`: (value, source) by the key's rest.

        Keys are in canonical form (lower case, dashes dropped), as every key jobexec reads.
        """
        start = _canon(prefix)
        return {
            key[len(start) :]: found
            for key, found in self._raw.values.items()
            if key.startswith(start) and len(key) > len(start)
        }

    def environment_under(self, prefix: str) -> dict[str, str]:
        """Every CONFIGS_*/SECRETS_* variable named after `prefix`: value by the name's rest."""
        start = relaxed_env_name(prefix)
        return {
            name.upper()[len(start) :]: value
            for name, value in self._raw.env.items()
            if name.upper().startswith(start) and len(name) > len(start)
        }

    def require(self, name: str) -> Any:
        value = self.get(name)
        if value is None or value == "":
            raise ConfigError(name, "is missing", self.source(name))
        return value

    # Derived settings, named as the code uses them.

    @property
    def dead_letter_topic(self) -> str:
        return self.get("configs.kafka.topic.dead-letter") or (
            f"{self.get('configs.kafka.topic.job-events')}.DLT"
        )

    @property
    def kafka_client_properties(self) -> dict[str, str]:
        """librdkafka properties every Kafka client gets: bootstrap plus the passthrough ones."""
        props = {key: value for key, (value, _src) in sorted(self._raw.kafka_properties.items())}
        props["bootstrap.servers"] = self.require("configs.kafka.bootstrap-servers")
        return props

    @property
    def broker_url(self) -> str:
        url: str = self.get("configs.celery.broker-url")
        password = self.get("secrets.celery.broker-password")
        if not password:
            return url
        parts = urlsplit(url)
        user = parts.username or ""
        host_port = parts.netloc.rpartition("@")[2]  # kept verbatim: IPv6 brackets survive
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host_port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

    @property
    def allowed_hosts(self) -> frozenset[str]:
        text: str = self.get("configs.executors.http.allowed-hosts")
        return frozenset(h.strip().lower() for h in text.split(",") if h.strip())

    def masked(self) -> dict[str, str]:
        """Every set value, secrets replaced by ***: the only dump of the configuration."""
        shown: dict[str, str] = {}
        for key in KEYS:
            found = self._raw.values.get(_canon(key.name))
            if found:
                shown[key.name] = MASK if is_secret(key.name) else mask_text(found[0])
        for prop, (value, _source) in self._raw.kafka_properties.items():
            secret = is_secret(prop) or prop in self._raw.secret_kafka_properties
            shown[f"kafka.{prop}"] = MASK if secret else mask_text(value)
        from jobexec.core.celery_properties import masked_celery_properties

        shown.update(masked_celery_properties(self))
        return shown


def settings_or_exit(environ: Mapping[str, str] | None = None) -> Settings:
    """Load the settings, or exit 2 with one line naming the key: never a traceback."""
    try:
        return Settings.load(environ)
    except ConfigError as exc:
        print(f"jobexec: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
