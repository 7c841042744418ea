"""Fixtures shared by the integration tests of the job store's statements."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from jobexec.core.db.engine import make_engine
from jobexec.core.db.migrate import upgrade
from jobexec.core.db.store import JobStore


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, migrated job database of each kind."""
    url = (
        request.getfixturevalue("pg_url")
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path / 'jobs.db'}"
    )
    engine = make_engine(make_url(url))
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def stores(database: str) -> Iterator[Callable[[], JobStore]]:
    """`stores()` -> one more JobStore on the test's database, with its own engine: a worker."""
    made: list[JobStore] = []

    def make() -> JobStore:
        made.append(JobStore(make_engine(make_url(database))))
        return made[-1]

    yield make
    for store in made:
        store.engine.dispose()


@pytest.fixture
def store(stores: Callable[[], JobStore]) -> JobStore:
    return stores()
