"""Operator commands of the `jobexec` script: `jobs ...` (the jobs table) and `dlq ...` (the DLT).

Each module exposes `register(subparsers)`; it parses the arguments, calls `jobexec.operations`
and prints. Handlers take the parsed arguments and return the exit status: 0 done, 1 not found
or not allowed (or a service unreachable), 2 bad input or configuration. A user's mistake is
one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable

from jobexec.core.config import Settings, settings_or_exit
from jobexec.core.printable import printable
from jobexec.operations.errors import SERVICE_ERRORS, InvalidInput, OperationError, service_failure

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
    """Turn refusals, bad input and unreachable services into one line and an exit status."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except CommandError as exc:
            say(str(exc))
            return exc.code
        except OperationError as exc:
            say(str(exc))
            return EXIT_BAD_INPUT if isinstance(exc, InvalidInput) else EXIT_REFUSED
        except SERVICE_ERRORS as exc:
            say(service_failure(exc))
            return EXIT_REFUSED

    return run


def load_settings() -> Settings:
    """The settings from the same files and environment as every other command (exit 2)."""
    return settings_or_exit()
