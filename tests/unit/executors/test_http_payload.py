"""The http executor's payload validation and allow-list, before any request is made."""

from __future__ import annotations

from typing import Any

import pytest

from executors import JobRun, PermanentError
from executors.http import HttpExecutor, HttpRequest
from jobexec.config import Settings


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
