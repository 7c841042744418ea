"""Routes (contract 10): a run goes to its task's queue; the job table is read once per poll."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from bridge.routing import Router, TaskLookupError
from jobexec.cli.main import _names_queues
from jobexec.core.config import ConfigError, Settings
from jobexec.core.routes import Routes


def _routes(tmp_path: Path, props: Mapping[str, str], **environ: str) -> Routes:
    path = tmp_path / "application.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()), encoding="utf-8")
    return Routes.from_settings(Settings.load({"EXECUTOR_CONFIG_LOCATION": str(path), **environ}))


def test_routes_come_from_files_and_environment(tmp_path: Path) -> None:
    routes = _routes(
        tmp_path,
        {"configs.celery.queue": "jobs", "configs.celery.routes.http": "slow"},
        CONFIGS_CELERY_ROUTES_SEND_EMAIL="mail",
    )

    assert routes.queue_for("http") == "slow"
    assert routes.queue_for("send_email") == "mail"
    assert routes.queue_for("SEND_EMAIL") == "mail"
    assert routes.queue_for("noop") == "jobs"
    assert routes.queue_for(None) == "jobs"
    assert routes.queues == ("jobs", "slow", "mail")


def test_a_route_without_a_queue_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"configs\.celery\.routes\.http names no queue"):
        _routes(tmp_path, {"configs.celery.routes.http": " "})


class CountingLookup:
    def __init__(self, tasks: Mapping[str, str | None]) -> None:
        self.tasks = tasks
        self.calls: list[list[str]] = []

    def __call__(self, job_ids: Sequence[str]) -> Mapping[str, str | None]:
        self.calls.append(list(job_ids))
        return {j: self.tasks[j] for j in job_ids if j in self.tasks}


def test_headers_win_and_the_others_are_looked_up_in_one_call() -> None:
    lookup = CountingLookup({"j2": "http", "j3": "noop", "j4": "http"})
    router = Router(Routes("jobs", {"http": "slow"}), lookup)

    queues = router.queues_for(
        [("j1", "http"), ("j2", None), ("j3", None), ("j4", "noop"), ("gone", None)]
    )

    assert queues == ["slow", "slow", "jobs", "jobs", "jobs"]
    assert lookup.calls == [["j2", "j3", "gone"]]


def test_without_routes_nothing_is_looked_up() -> None:
    lookup = CountingLookup({"j1": "http"})
    router = Router(Routes("jobs"), lookup)

    assert router.queues_for([("j1", None), ("j2", "http")]) == ["jobs", "jobs"]
    assert lookup.calls == []


def test_a_failed_lookup_is_a_hand_over_error() -> None:
    def broken(_ids: Sequence[str]) -> Mapping[str, str | None]:
        raise OperationalError("select", {}, Exception("connection refused"))

    router = Router(Routes("jobs", {"http": "slow"}), broken)

    with pytest.raises(TaskLookupError):
        router.queues_for([("j1", None)])


@pytest.mark.parametrize(
    ("args", "named"),
    [
        ([], False),
        (["--pool", "threads", "-c", "4"], False),
        (["-Q", "a,b"], True),
        (["-Qa,b"], True),
        (["--queues", "a"], True),
        (["--queues=a"], True),
    ],
)
def test_a_users_queues_option_is_recognised(args: list[str], named: bool) -> None:
    assert _names_queues(args) is named
