"""Log set-up: plain lines for people by default, one JSON object per line as an option."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

# Attributes every LogRecord has; anything else came from `extra=` and belongs in the event.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
# Loggers of jobexec's own code; every other line (celery, kombu...) is a library's, and so is
# librdkafka's, which confluent-kafka hands to jobexec.kafka.client.
_OWN_LOGGERS = ("jobexec", "bridge", "workers", "executors")
_LIBRARY_LOGGERS = ("jobexec.kafka.client",)
LIBRARY_ACTION = "library_log"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event |= {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if record.name.startswith(_LIBRARY_LOGGERS) or not record.name.startswith(_OWN_LOGGERS):
            event.setdefault("action", LIBRARY_ACTION)
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


def configure(fmt: str = "plain", level: int | str = logging.INFO) -> None:
    """Route every process's log lines to stderr, plain or JSON, at `configs.logging.level`."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("kafka", "urllib3", "httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
