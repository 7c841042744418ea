"""The readiness probe of the job database: True when it answers, False (not an error) when not."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from sqlalchemy import make_url

from jobexec.core.db.probe import DatabaseProbe


def test_a_database_that_answers_is_reported_up(tmp_path: Path) -> None:
    probe = DatabaseProbe(make_url(f"sqlite:///{tmp_path / 'jobs.db'}"), timeout_s=3)

    assert probe() is True


def test_a_database_nobody_listens_for_is_reported_down_within_the_timeout() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    probe = DatabaseProbe(make_url(f"postgresql+psycopg://u:p@127.0.0.1:{port}/jobs"), timeout_s=2)

    started = time.monotonic()
    answer = probe()

    assert answer is False
    assert time.monotonic() - started < 5
