"""The http executor's payload validation and allow-list, before any request is made."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from executors import JobRun, PermanentError
from executors.http import HttpExecutor, HttpRequest, job_id_header, retry_after_seconds
from jobexec.core.config import Settings


def request_of(**payload: Any) -> HttpRequest:
    return HttpRequest.from_payload({"task": "http", **payload})


def test_given_only_a_url_when_validated_then_the_defaults_apply() -> None:
    request = request_of(url="https://API.example.com/hook")

    assert request.method == "POST"
    assert request.host == "api.example.com"
    assert request.timeout_seconds == 10
    assert request.headers == {}
    assert not request.has_body


def test_given_a_full_payload_when_validated_then_every_field_is_kept() -> None:
    request = request_of(
        url="http://h/x",
        method="get",
        headers={"A": "b"},
        body=[1, {"k": None}],
        timeout_seconds=2.5,
    )

    assert (request.method, dict(request.headers), request.body) == (
        "GET",
        {"A": "b"},
        [1, {"k": None}],
    )
    assert request.has_body and request.timeout_seconds == 2.5


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "payload.url"),
        ({"url": 42}, "payload.url"),
        ({"url": "  "}, "payload.url"),
        ({"url": "ftp://example.com/file"}, "payload.url"),
        ({"url": "file:///etc/passwd"}, "payload.url"),
        ({"url": "http:///nohost"}, "payload.url"),
        ({"url": "http://[::1"}, "payload.url"),
        ({"url": "http://h", "method": 1}, "payload.method"),
        ({"url": "http://h", "method": "GET /x"}, "payload.method"),
        ({"url": "http://h", "method": "ПОСТ"}, "payload.method"),
        ({"url": "http://h", "method": "po\u017ft"}, "payload.method"),
        ({"url": "http://h", "method": "TRACE"}, "payload.method"),
        ({"url": "http://h", "method": "connect"}, "payload.method"),
        ({"url": "http://h", "method": "PURGE"}, "payload.method"),
        ({"url": "http://h:99999/"}, "payload.url"),
        ({"url": "http://h:0/"}, "payload.url"),
        ({"url": "http://a b/"}, "payload.url"),
        ({"url": "http://h\x00/"}, "payload.url"),
        ({"url": "http://h", "headers": {"X-A": "1\r\nX-B: 2"}}, "payload.headers"),
        ({"url": "http://h", "headers": {"Bad Name": "v"}}, "payload.headers"),
        ({"url": "http://h", "headers": {"": "v"}}, "payload.headers"),
        ({"url": "http://h", "headers": {"Host": "other.example"}}, "payload.headers"),
        ({"url": "http://h", "headers": {"Content-Length": "5"}}, "payload.headers"),
        ({"url": "http://h", "timeout_seconds": 10**400}, "payload.timeout_seconds"),
        ({"url": "http://h", "timeout_seconds": float("nan")}, "payload.timeout_seconds"),
        ({"url": "http://h", "timeout_seconds": 86401}, "payload.timeout_seconds"),
        ({"url": "http://h", "body": float("nan")}, "payload.body"),
        ({"url": "http://h", "body": {"s": "\ud800"}}, "payload.body"),
        ({"url": "http://h", "headers": ["a"]}, "payload.headers"),
        ({"url": "http://h", "headers": {"a": 1}}, "payload.headers"),
        ({"url": "http://h", "headers": {"a": "café"}}, "payload.headers"),
        ({"url": "http://h", "timeout_seconds": 0}, "payload.timeout_seconds"),
        ({"url": "http://h", "timeout_seconds": -1}, "payload.timeout_seconds"),
        ({"url": "http://h", "timeout_seconds": "5"}, "payload.timeout_seconds"),
        ({"url": "http://h", "timeout_seconds": True}, "payload.timeout_seconds"),
        ({"url": "http://h", "timeout_seconds": float("inf")}, "payload.timeout_seconds"),
    ],
)
def test_given_a_bad_payload_when_validated_then_a_permanent_error_names_the_field(
    payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(PermanentError) as raised:
        HttpRequest.from_payload(payload)

    assert str(raised.value).startswith(field)


def test_given_a_method_in_lower_case_when_validated_then_it_is_upper_cased() -> None:
    assert request_of(url="http://h", method="options").method == "OPTIONS"


def test_given_a_json_body_when_validated_then_it_is_encoded_once_as_utf8_json() -> None:
    request = request_of(url="http://h", body={"note": "café"})

    assert request.content == '{"note": "café"}'.encode()


def test_given_header_values_with_surrounding_spaces_when_validated_then_they_are_trimmed() -> None:
    assert request_of(url="http://h", headers={"X-A": "  v 1\t"}).headers == {"X-A": "v 1"}


@pytest.mark.parametrize(
    ("job_id", "sent"),
    [
        ("job_7f0c", "job_7f0c"),
        ("job_é", "job_%C3%A9"),
        ("job_\ud800", "job_%ED%A0%80"),
        ("job 100%", "job%20100%25"),
        ("job\r\nX-Evil: 1", "job%0D%0AX-Evil:%201"),
    ],
)
def test_given_a_job_id_when_put_in_x_job_id_then_it_is_visible_ascii(
    job_id: str, sent: str
) -> None:
    assert job_id_header(job_id) == sent


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("3", 3.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("9" * 5000, 1e12),
        ("Thu, 03 Dec 2026 12:00:30 GMT", 30.0),
        ("Thu, 03 Dec 2026 11:59:00 GMT", 0.0),
        ("-5", None),
        ("soon", None),
        ("", None),
        ("1.5", None),
        (None, None),
    ],
)
def test_given_a_retry_after_value_when_parsed_then_seconds_from_now(
    value: str | None, seconds: float | None
) -> None:
    now = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)

    assert retry_after_seconds(value, now) == seconds


def test_given_a_url_with_credentials_when_described_then_they_are_left_out() -> None:
    request = request_of(url="https://user:pw@example.com:8443/a/b?token=secret")

    assert request.target == "POST https://example.com:8443/a/b"


def test_given_an_allow_list_when_a_host_is_outside_it_then_the_run_fails_permanently() -> None:
    executor = HttpExecutor(
        Settings.load({"CONFIGS_EXECUTORS_HTTP_ALLOWEDHOSTS": "Api.Example.com"})
    )
    try:
        with pytest.raises(PermanentError) as raised:
            executor.execute(JobRun("job_1", 1, "r", {"task": "http", "url": "http://evil.test/"}))
    finally:
        executor.close()

    assert str(raised.value) == "host evil.test:80 is not in configs.executors.http.allowed-hosts"
