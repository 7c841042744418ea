"""Operator commands of the `jobexec` script: `jobs ...` (the jobs table) and `dlq ...` (the DLT).

Each module exposes `register(subparsers)`. Handlers take the parsed arguments and return the
exit status: 0 done, 1 not found or not allowed (or a service unreachable), 2 bad input or
configuration. A user's mistake is one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

from confluent_kafka import KafkaException
from sqlalchemy.exc import SQLAlchemyError

from jobexec.core.config import Settings, settings_or_exit
from jobexec.core.db.engine import database_url, make_engine
from jobexec.core.db.store import JobStore
from jobexec.core.printable import printable

EXIT_REFUSED = 1
EXIT_BAD_INPUT = 2

Handler = Callable[[argparse.Namespace], int]


class CommandError(Exception):
    """Stops a command with one line on stderr and an exit status."""

    def __init__(self, message: str, code: int = EXIT_REFUSED) -> None:
        super().__init__(message)
        self.code = code


def bad_input(message: str) -> CommandError:
    return CommandError(message, EXIT_BAD_INPUT)


def say(message: str) -> None:
    """A line for the operator on stderr; stdout carries only the command's result."""
    print(f"jobexec: {printable(message)}", file=sys.stderr)


def command(func: Handler) -> Handler:
    """Turn CommandError and unreachable services into one line and an exit status."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except CommandError as exc:
            say(str(exc))
            return exc.code
        except SQLAlchemyError as exc:
            say(f"job database error: {_first_line(exc)} (has `jobexec db upgrade` been run?)")
            return EXIT_REFUSED
        except KafkaException as exc:
            say(f"Kafka error: {_first_line(exc)} (is configs.kafka.bootstrap-servers right?)")
            return EXIT_REFUSED

    return run


def load_settings() -> Settings:
    """The settings from the same files and environment as every other command (exit 2)."""
    return settings_or_exit()


def open_store(settings: Settings) -> JobStore:
    """A JobStore on `configs.jobDb.url` (ConfigError, so exit 2, when it is not set)."""
    return JobStore(make_engine(database_url(settings)))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
