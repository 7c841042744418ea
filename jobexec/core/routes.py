"""Routes: `configs.celery.routes.<task>=<queue>` sends the runs of that task to their own queue.

Every other run goes to `configs.celery.queue`. Task names match as every key does: case and
dashes ignored (`CONFIGS_CELERY_ROUTES_SEND_EMAIL=mail` routes `send_email`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jobexec.core.config import ConfigError
from jobexec.core.sections import CelerySection

if TYPE_CHECKING:
    from jobexec.core.config import Settings

PREFIX = "configs.celery.routes."
# The header jobexec's scheduler and sweeper put on a JobEvent: the job's payload.task.
TASK_HEADER = "jobexec-task"


def _canon(task: str) -> str:
    return task.strip().lower().replace("-", "")


@dataclass(frozen=True)
class Routes:
    """Which Celery queue the runs of each task go to."""

    default: str
    by_task: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Routes:
        found: dict[str, tuple[str, str]] = dict(settings.under(PREFIX))
        for rest, value in settings.environment_under(PREFIX).items():
            found[rest.lower()] = (value, f"environment variable CONFIGS_CELERY_ROUTES_{rest}")
        by_task: dict[str, str] = {}
        for task, (queue, source) in found.items():
            if not queue.strip():
                raise ConfigError(PREFIX + task, "names no queue", source)
            by_task[_canon(task)] = queue.strip()
        return cls(CelerySection.from_settings(settings).queue, by_task)

    @property
    def queues(self) -> tuple[str, ...]:
        """Every queue runs may go to, the default first."""
        return tuple(dict.fromkeys((self.default, *self.by_task.values())))

    def queue_for(self, task: str | None) -> str:
        if task is None:
            return self.default
        return self.by_task.get(_canon(task), self.default)
