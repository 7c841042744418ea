"""`python -m bench.hookless ARGS`: `jobexec ARGS` with the tracing hooks made no-op functions.

The baseline the tracing-overhead measurement holds tracing off against: the same process with
every hook of `jobexec.core.tracing` replaced, in this process only (prefork children inherit
it), by a function that does nothing and returns what tracing off would have nothing to say with.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from jobexec.core import tracing


def _nothing(*_args: Any, **_kwargs: Any) -> None:
    return None


def _false(*_args: Any, **_kwargs: Any) -> bool:
    return False


def _no_headers(*_args: Any, **_kwargs: Any) -> list[tuple[str, bytes]]:
    return []


def _no_outgoing(*_args: Any, **_kwargs: Any) -> dict[str, str]:
    return {}


# Every function of jobexec.core.tracing that the scheduler, bridge, worker or executors call.
NO_OPS: dict[str, Callable[..., Any]] = {
    "setup": _false,
    "enabled": _false,
    "shutdown": _nothing,
    "dispatch_headers": _no_headers,
    "record_headers": _nothing,
    "start_try": _nothing,
    "current_try": _nothing,
    "try_outcome": _nothing,
    "try_stopped": _nothing,
    "abandon_try": _nothing,
    "end_try": _nothing,
    "outgoing_headers": _no_outgoing,
}


def remove_hooks() -> None:
    """Replace the hooks; callers look them up on the module at each call, so this holds."""
    for name, replacement in NO_OPS.items():
        if not callable(getattr(tracing, name, None)):
            raise RuntimeError(f"jobexec.core.tracing.{name} is gone: update bench.hookless")
        setattr(tracing, name, replacement)


def main() -> int:
    remove_hooks()
    from jobexec.cli.main import main as jobexec_main

    return jobexec_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
