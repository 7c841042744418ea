"""Log set-up: plain lines for people, or one JSON object per line carrying `extra` fields."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from jobexec.core import logs

NOISY = ("kafka", "urllib3", "httpx", "httpcore", "alembic")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    noisy_levels = {name: logging.getLogger(name).level for name in NOISY}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, noisy_level in noisy_levels.items():
            logging.getLogger(name).setLevel(noisy_level)


def json_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines()]


def test_json_format_emits_one_object_per_line_with_extra_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("json")
    log = logging.getLogger("jobexec.test")

    log.info("job %s failed", "job_1", extra={"action": "job_error_retry", "job_id": "job_1"})
    log.warning("second", extra={"action": "job_dropped", "job_id": "job_2", "attempt": 3})

    first, second = json_lines(capsys.readouterr().err)
    assert first["message"] == "job job_1 failed"
    assert first["level"] == "INFO"
    assert first["logger"] == "jobexec.test"
    assert first["action"] == "job_error_retry"
    assert first["job_id"] == "job_1"
    assert "ts" in first
    assert second["level"] == "WARNING"
    assert second["action"] == "job_dropped"
    assert second["attempt"] == 3


def test_json_format_leaves_out_standard_record_attributes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("json")

    logging.getLogger("jobexec.test").info("hello")

    (event,) = json_lines(capsys.readouterr().err)
    assert set(event) == {"ts", "level", "logger", "message"}


def test_json_format_keeps_a_multi_line_message_on_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("json")

    logging.getLogger("jobexec.test").error("first line\nsecond line")

    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert json.loads(err)["message"] == "first line\nsecond line"


def test_json_format_includes_the_exception_on_the_same_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("json")

    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("jobexec.test").exception("it failed", extra={"action": "job_error"})

    (event,) = json_lines(capsys.readouterr().err)
    assert event["action"] == "job_error"
    assert "RuntimeError: boom" in event["exception"]


def test_json_format_survives_values_json_cannot_encode(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure("json")

    logging.getLogger("jobexec.test").info("odd", extra={"payload": {1, 2}, "when": object()})

    (event,) = json_lines(capsys.readouterr().err)
    assert isinstance(event["payload"], str)


def test_plain_format_emits_human_lines(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("plain")

    logging.getLogger("jobexec.test").warning("job %s dropped", "job_1", extra={"action": "x"})

    line = capsys.readouterr().err.rstrip("\n")
    assert "\n" not in line
    assert line.endswith("WARNING jobexec.test: job job_1 dropped")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_plain_is_the_default_format(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure()

    logging.getLogger("jobexec.test").info("hello")

    assert capsys.readouterr().err.rstrip("\n").endswith("INFO jobexec.test: hello")


def test_level_filters_lower_records(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json", level=logging.WARNING)
    log = logging.getLogger("jobexec.test")

    log.info("hidden")
    log.warning("shown")

    assert [event["message"] for event in json_lines(capsys.readouterr().err)] == ["shown"]


def test_configure_replaces_handlers_instead_of_adding(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("plain")
    logs.configure("json")

    logging.getLogger("jobexec.test").info("once")

    assert [event["message"] for event in json_lines(capsys.readouterr().err)] == ["once"]


def test_noisy_libraries_are_quietened_to_warning(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("json", level=logging.DEBUG)

    logging.getLogger("urllib3.connectionpool").info("chatter")
    logging.getLogger("jobexec.test").debug("ours")

    assert [event["message"] for event in json_lines(capsys.readouterr().err)] == ["ours"]


@pytest.mark.parametrize(
    "library", ["celery.worker.consumer", "kombu.connection", "jobexec.kafka.client"]
)
def test_json_lines_of_libraries_carry_the_library_log_action(
    library: str, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("json")

    logging.getLogger(library).warning("Connection to broker lost")
    logging.getLogger("jobexec.bridge").warning("own", extra={"action": "bridge_paused"})

    first, second = json_lines(capsys.readouterr().err)
    assert first["action"] == "library_log"
    assert first["logger"] == library
    assert second["action"] == "bridge_paused"


@pytest.mark.parametrize(("level", "shown"), [("DEBUG", 2), ("INFO", 1), ("WARNING", 0)])
def test_configured_level_is_the_least_severe_line_written(
    level: str, shown: int, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.configure("json", level)
    log = logging.getLogger("jobexec.test")

    log.debug("debug line")
    log.info("info line")

    assert len(json_lines(capsys.readouterr().err)) == shown
