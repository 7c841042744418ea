"""Log set-up: plain lines for people by default, one JSON object per line as an option."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from jobexec.core.masking import mask_text, mask_value
from jobexec.core.printable import printable, printable_lines

# Attributes every LogRecord has; anything else came from `extra=` and belongs in the event.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}
# Loggers of jobexec's own code; every other line (celery, kombu...) is a library's, and so is
# librdkafka's, which confluent-kafka hands to jobexec.kafka.client.
_OWN_LOGGERS = ("jobexec", "bridge", "workers", "executors")
_LIBRARY_LOGGERS = ("jobexec.kafka.client",)
LIBRARY_ACTION = "library_log"


class JsonFormatter(logging.Formatter):
    """One JSON object per line; secrets in the message and the extra fields masked."""

    def format(self, record: logging.LogRecord) -> str:
        event = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": mask_text(record.getMessage()),
        }
        extra = {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        event |= mask_value(extra)
        if record.name.startswith(_LIBRARY_LOGGERS) or not record.name.startswith(_OWN_LOGGERS):
            event.setdefault("action", LIBRARY_ACTION)
        if record.exc_info:
            event["exception"] = mask_text(self.formatException(record.exc_info))
        # json.dumps escapes every control character: nothing raw reaches a terminal.
        return json.dumps(event, default=lambda obj: mask_text(str(obj)))


class PlainFormatter(logging.Formatter):
    """`time LEVEL logger: message`, secrets masked and non-printable characters escaped."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        shown = logging.makeLogRecord(record.__dict__)
        shown.message = printable(mask_text(record.message))
        return super().formatMessage(shown)

    def formatException(self, ei: Any) -> str:
        return printable_lines(mask_text(super().formatException(ei)))


def configure(fmt: str = "plain", level: int | str = logging.INFO) -> None:
    """Route every process's log lines to stderr, plain or JSON, at `configs.logging.level`."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("kafka", "urllib3", "httpx", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
