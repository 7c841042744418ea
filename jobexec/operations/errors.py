"""How an operation says no: `OperationError` carries the reason as the operator reads it."""

from __future__ import annotations

from confluent_kafka import KafkaException
from sqlalchemy.exc import SQLAlchemyError

# A service that is away or refuses: the CLI and the console report these as a refusal too.
SERVICE_ERRORS = (SQLAlchemyError, KafkaException)


class OperationError(Exception):
    """The operation was refused (no such job, a state that does not allow it, a service away);
    the message is one line for the operator."""


class InvalidInput(OperationError):
    """The operator's input is wrong, not the state of a job or a service."""


def service_failure(exc: SQLAlchemyError | KafkaException) -> str:
    """One line naming the unreachable service and the setting to check."""
    if isinstance(exc, KafkaException):
        return f"Kafka error: {_first_line(exc)} (is configs.kafka.bootstrap-servers right?)"
    return f"job database error: {_first_line(exc)} (has `jobexec db upgrade` been run?)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
