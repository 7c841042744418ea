"""Celery settings passed through from `configs.celery.properties.*` and `secrets.` alike.

`configs.celery.properties.worker_max_tasks_per_child=100` becomes Celery's
`worker_max_tasks_per_child = 100`; dots below the setting's name build nested mappings
(`...broker_transport_options.master_name=mymaster`). In environment variables the setting's
name keeps its underscores (`CONFIGS_CELERY_PROPERTIES_WORKER_MAX_TASKS_PER_CHILD`); after it,
one `_` starts the nested key and each `__` goes one level deeper
(`CONFIGS_CELERY_PROPERTIES_BROKER_TRANSPORT_OPTIONS_MASTER_NAME`). Names are checked against
Celery's own list of settings, and the settings jobexec depends on cannot be overridden.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from celery.app.defaults import DEFAULTS

from jobexec.core.config import ConfigError, is_secret, relaxed_env_name
from jobexec.core.masking import MASK, mask_text

if TYPE_CHECKING:
    from jobexec.core.config import Settings

PREFIXES = ("configs.celery.properties.", "secrets.celery.properties.")

# Settings jobexec owns, and why a user may not set them through the pass-through.
REFUSED: dict[str, str] = {
    "broker_url": "is set by configs.celery.broker-url",
    "broker_read_url": "is set by configs.celery.broker-url",
    "broker_write_url": "is set by configs.celery.broker-url",
    "task_default_queue": "is set by configs.celery.queue",
    "task_routes": "is set by configs.celery.routes.<task>",
    "task_default_queue_type": "is set by configs.celery.queue-type",
    "task_create_missing_queue_type": "is set by configs.celery.queue-type",
    "worker_prefetch_multiplier": "is set by configs.celery.prefetch-multiplier",
    # Task messages cross a trust boundary: JSON only, pickle never.
    "task_serializer": "is fixed to json (messages cross a trust boundary)",
    "result_serializer": "is fixed to json (messages cross a trust boundary)",
    "accept_content": "is fixed to json (messages cross a trust boundary)",
    "result_accept_content": "is fixed to json (messages cross a trust boundary)",
    "event_serializer": "is fixed to json (messages cross a trust boundary)",
    # A run is acknowledged only once it ended, and handed back when its worker died.
    "task_acks_late": "is fixed to true (a run is never lost with its worker)",
    "task_reject_on_worker_lost": "is fixed to true (a run is never lost with its worker)",
}

_INTEGER = re.compile(r"[+-]?\d+")
_DECIMAL = re.compile(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?|[+-]?\d+[eE][+-]?\d+")


@dataclass(frozen=True)
class CeleryProperty:
    """One passed-through value: its Celery setting, the nested path below it, its source."""

    key: str  # as the user wrote it, for messages
    setting: str
    path: tuple[str, ...]
    text: str
    source: str
    secret: bool

    @property
    def value(self) -> int | float | bool | str:
        return typed_value(self.text)


def typed_value(text: str) -> int | float | bool | str:
    """Integers, decimals and true/false as such; anything else as text."""
    stripped = text.strip()
    if _INTEGER.fullmatch(stripped):
        return int(stripped)
    if _DECIMAL.fullmatch(stripped):
        return float(stripped)
    if stripped.lower() in {"true", "false"}:
        return stripped.lower() == "true"
    return stripped


def _from_files(settings: Settings) -> list[CeleryProperty]:
    found: list[CeleryProperty] = []
    for prefix in PREFIXES:
        for rest, (text, source) in settings.under(prefix).items():
            setting, *path = rest.split(".")
            found.append(
                CeleryProperty(
                    prefix + rest, setting, tuple(path), text, source, prefix.startswith("secrets.")
                )
            )
    return found


def _setting_of(rest: str) -> tuple[str, tuple[str, ...]]:
    """An environment name's rest to (setting, path): the longest known setting name wins."""
    lowered = rest.lower()
    for setting in sorted(DEFAULTS, key=len, reverse=True):
        if lowered == setting:
            return setting, ()
        if lowered.startswith(setting + "_"):
            return setting, tuple(lowered[len(setting) + 1 :].split("__"))
    return lowered, ()  # unknown: reported as such by validate()


def _from_environment(settings: Settings) -> list[CeleryProperty]:
    found: list[CeleryProperty] = []
    for prefix in PREFIXES:
        for rest, text in settings.environment_under(prefix).items():
            setting, path = _setting_of(rest)
            name = relaxed_env_name(prefix) + rest
            found.append(
                CeleryProperty(
                    name,
                    setting,
                    path,
                    text,
                    f"environment variable {name}",
                    prefix.startswith("secrets."),
                )
            )
    return found


def celery_properties(settings: Settings) -> list[CeleryProperty]:
    """Every passed-through setting, validated; environment variables after (over) files."""
    found = _from_files(settings) + _from_environment(settings)
    for prop in found:
        if prop.setting not in DEFAULTS:
            raise ConfigError(prop.key, "is not a Celery setting", prop.source)
        if prop.setting in REFUSED:
            raise ConfigError(prop.key, REFUSED[prop.setting], prop.source)
        if any(not part for part in prop.path):
            raise ConfigError(prop.key, "has an empty nested key", prop.source)
    plain = {p.setting for p in found if not p.path}
    for prop in found:
        if prop.path and prop.setting in plain:
            problem = f"nests below {prop.setting}, which is also given a plain value"
            raise ConfigError(prop.key, problem, prop.source)
    return found


def apply_celery_properties(config: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """`config` with the passed-through settings merged over it (nested mappings merged too)."""
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in config.items()}
    for prop in celery_properties(settings):
        if not prop.path:
            merged[prop.setting] = prop.value
            continue
        target = merged.setdefault(prop.setting, {})
        if target is None:
            target = merged[prop.setting] = {}
        for part in (*prop.path[:-1], None):
            if not isinstance(target, dict):
                raise ConfigError(
                    prop.key, "nests below a setting that is not a mapping", prop.source
                )
            if part is not None:
                target = target.setdefault(part, {})
        target[prop.path[-1]] = prop.value
    return merged


def masked_celery_properties(settings: Settings) -> dict[str, str]:
    """For `jobexec config`: each passed-through setting, secret ones as ***."""
    shown: dict[str, str] = {}
    for prop in _from_files(settings) + _from_environment(settings):
        name = ".".join(("celery", prop.setting, *prop.path))
        shown[name] = MASK if prop.secret or is_secret(name) else mask_text(prop.text)
    return shown
