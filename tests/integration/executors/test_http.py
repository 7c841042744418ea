"""The http executor against a real local HTTP server."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from executors import JobRun, PermanentError, TransientError
from executors.http import HttpExecutor
from tests.integration.executors.local_servers import Reply, ScriptedHttpServer


def http_run(url: str, attempt: int = 1, run_id: str = "run-1", **payload: Any) -> JobRun:
    return JobRun("job_42", attempt, run_id, {"task": "http", "url": url, **payload})


def test_given_a_2xx_endpoint_when_executed_then_one_post_succeeds_with_job_headers(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    http_server.script(204)

    http_executor.execute(http_run(http_server.url + "/hook", attempt=2, run_id="run-abc"))

    [request] = http_server.requests
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["x-job-id"] == "job_42"
    assert request.headers["x-job-attempt"] == "2"
    assert request.headers["idempotency-key"] == "run-abc"


def test_given_two_tries_of_one_run_when_executed_then_the_idempotency_key_is_the_same(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    http_server.script(503, 200)

    with pytest.raises(TransientError):
        http_executor.execute(http_run(http_server.url, attempt=1, run_id="run-7"))
    http_executor.execute(http_run(http_server.url, attempt=2, run_id="run-7"))

    first, second = http_server.requests
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"] == "run-7"
    assert [first.headers["x-job-attempt"], second.headers["x-job-attempt"]] == ["1", "2"]


def test_given_a_json_body_and_headers_when_executed_then_the_server_receives_them(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    body = {"order": 17, "items": ["a", "b"], "note": "café"}

    http_executor.execute(
        http_run(http_server.url + "/orders", method="put", headers={"X-Tenant": "t1"}, body=body)
    )

    [request] = http_server.requests
    assert request.method == "PUT"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-tenant"] == "t1"
    assert request.json() == body


def test_given_a_get_without_body_when_executed_then_no_body_is_sent(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    http_executor.execute(http_run(http_server.url + "/ping?x=1", method="GET"))

    [request] = http_server.requests
    assert (request.method, request.path, request.body) == ("GET", "/ping?x=1", b"")


def test_given_a_payload_header_named_idempotency_key_when_executed_then_the_run_id_wins(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    http_executor.execute(
        http_run(
            http_server.url,
            run_id="run-9",
            headers={"idempotency-key": "mine", "X-JOB-ID": "other"},
        )
    )

    [request] = http_server.requests
    sent = {(name.lower(), value) for name, value in request.header_lines}
    assert {("idempotency-key", "run-9"), ("x-job-id", "job_42")} <= sent
    assert ("idempotency-key", "mine") not in sent
    assert ("x-job-id", "other") not in sent


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_given_a_retryable_status_when_executed_then_the_error_is_transient_and_names_it(
    status: int, http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    http_server.script(status)

    with pytest.raises(TransientError, match=str(status)):
        http_executor.execute(http_run(http_server.url))

    assert len(http_server.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_given_a_client_error_status_when_executed_then_the_error_is_permanent_and_names_it(
    status: int, http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    http_server.script(status)

    with pytest.raises(PermanentError, match=str(status)):
        http_executor.execute(http_run(http_server.url))

    assert len(http_server.requests) == 1


def test_given_a_redirect_when_executed_then_it_is_not_followed_and_fails_permanently(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    http_server.script(Reply(302, headers={"Location": "http://example.com/elsewhere"}))

    with pytest.raises(PermanentError, match="302"):
        http_executor.execute(http_run(http_server.url))

    assert len(http_server.requests) == 1


def test_given_a_server_slower_than_the_timeout_when_executed_then_the_error_is_transient(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    http_server.script(Reply(200, delay=2.0))

    started = time.monotonic()
    with pytest.raises(TransientError, match="timed out"):
        http_executor.execute(http_run(http_server.url, timeout_seconds=0.2))

    assert time.monotonic() - started < 1.5
    assert len(http_server.requests) == 1


def test_given_nothing_listening_when_executed_then_the_error_is_transient(
    closed_port: int, http_executor: HttpExecutor
) -> None:
    with pytest.raises(TransientError, match="ConnectError"):
        http_executor.execute(http_run(f"http://127.0.0.1:{closed_port}/hook"))


def test_given_a_host_outside_the_allow_list_when_executed_then_it_fails_without_a_call(
    http_server: ScriptedHttpServer, make_http_executor: Callable[..., HttpExecutor]
) -> None:
    executor = make_http_executor(CONFIGS_EXECUTORS_HTTP_ALLOWEDHOSTS="api.example.com")

    with pytest.raises(PermanentError) as raised:
        executor.execute(http_run(http_server.url))

    assert str(raised.value) == ("host 127.0.0.1 is not in configs.executors.http.allowed-hosts")
    assert http_server.requests == []


def test_given_a_host_on_the_allow_list_when_executed_then_the_call_is_made(
    http_server: ScriptedHttpServer, make_http_executor: Callable[..., HttpExecutor]
) -> None:
    executor = make_http_executor(CONFIGS_EXECUTORS_HTTP_ALLOWEDHOSTS="api.example.com, 127.0.0.1")

    executor.execute(http_run(http_server.url))

    assert len(http_server.requests) == 1


def test_given_a_bad_payload_when_executed_then_it_fails_permanently_without_a_call(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    with pytest.raises(PermanentError, match="timeout_seconds"):
        http_executor.execute(http_run(http_server.url, timeout_seconds="soon"))

    assert http_server.requests == []
