"""The http executor against a real local HTTP server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from executors import JobRun, PermanentError, Stopped, TransientError
from executors.http import HttpExecutor
from jobexec.core.config import Settings
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

    assert str(raised.value) == (
        f"host 127.0.0.1:{http_server.port} is not in configs.executors.http.allowed-hosts"
    )
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


# --- whole-call deadline, stop ----------------------------------------------------------------


def test_given_a_server_that_trickles_its_headers_when_executed_then_the_timeout_bounds_the_call(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    # one byte every 0.3 s: each read is short, only a whole-call deadline ends it
    http_server.script(Reply(200, trickle=0.3))

    started = time.monotonic()
    with pytest.raises(TransientError, match=r"timed out after 1s"):
        http_executor.execute(http_run(http_server.url, timeout_seconds=1))

    assert time.monotonic() - started < 1 + 0.5
    assert len(http_server.trickled_at) >= 2  # the server did trickle before it was given up on
    assert len(http_server.requests) == 1


def test_given_a_try_deadline_sooner_than_the_timeout_when_executed_then_the_deadline_wins(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    http_server.script(Reply(200, trickle=0.3))
    run = JobRun(
        "job_42",
        1,
        "run-1",
        {"task": "http", "url": http_server.url, "timeout_seconds": 30},
        deadline=time.monotonic() + 1.0,
    )

    started = time.monotonic()
    with pytest.raises(TransientError, match="timed out"):
        http_executor.execute(run)

    assert time.monotonic() - started < 1 + 0.5


def test_given_two_threads_with_different_timeouts_when_both_trickle_then_each_keeps_its_own(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    # as in `--pool threads`: one executor, concurrent tries, each bounded by its own deadline
    http_server.script(Reply(200, trickle=0.2), Reply(200, trickle=0.2))
    took: dict[float, float] = {}

    def call(timeout: float) -> None:
        started = time.monotonic()
        with pytest.raises(TransientError, match="timed out"):
            http_executor.execute(http_run(http_server.url, timeout_seconds=timeout))
        took[timeout] = time.monotonic() - started

    threads = [threading.Thread(target=call, args=(t,)) for t in (1.0, 2.5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert 1.0 <= took[1.0] < 1.0 + 0.5
    assert 2.5 <= took[2.5] < 2.5 + 0.5


def test_given_stop_set_during_the_call_when_executed_then_it_is_aborted_within_a_second(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    http_server.script(Reply(200, delay=20))
    run = http_run(http_server.url, timeout_seconds=30)
    timer = threading.Timer(0.5, run.stop.set)

    timer.start()
    started = time.monotonic()
    with pytest.raises(Stopped, match="told to stop"):
        http_executor.execute(run)
    stopped_after = time.monotonic() - started - 0.5

    assert stopped_after < 1.0
    assert len(http_server.requests) == 1


def test_given_stop_set_during_a_trickle_when_executed_then_it_is_aborted_within_a_second(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    http_server.script(Reply(200, trickle=0.05))
    run = http_run(http_server.url, timeout_seconds=30)
    timer = threading.Timer(0.5, run.stop.set)

    timer.start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        http_executor.execute(run)

    assert time.monotonic() - started - 0.5 < 1.0


def test_given_a_connection_that_never_completes_when_executed_then_the_timeout_bounds_it(
    unaccepting_port: int, http_executor: HttpExecutor
) -> None:
    started = time.monotonic()
    with pytest.raises(TransientError, match=r"timed out after 1s \(ConnectTimeout\)"):
        http_executor.execute(http_run(f"http://127.0.0.1:{unaccepting_port}/", timeout_seconds=1))

    assert time.monotonic() - started < 1 + 0.5


def test_given_stop_set_while_connecting_when_executed_then_it_is_aborted_within_a_second(
    unaccepting_port: int, http_executor: HttpExecutor
) -> None:
    run = http_run(f"http://127.0.0.1:{unaccepting_port}/", timeout_seconds=30)
    timer = threading.Timer(0.5, run.stop.set)

    timer.start()
    started = time.monotonic()
    with pytest.raises(Stopped):
        http_executor.execute(run)

    assert time.monotonic() - started - 0.5 < 1.0


def test_given_stop_already_set_when_executed_then_no_call_is_made(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    run = http_run(http_server.url)
    run.stop.set()

    with pytest.raises(Stopped):
        http_executor.execute(run)

    assert http_server.requests == []


# --- Retry-After ------------------------------------------------------------------------------


def test_given_429_with_retry_after_seconds_when_executed_then_the_wait_is_asked_for(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    http_server.script(Reply(429, headers={"Retry-After": "3"}))

    with pytest.raises(TransientError) as raised:
        http_executor.execute(http_run(http_server.url))

    assert raised.value.retry_after == 3
    assert "429" in str(raised.value)


def test_given_503_with_retry_after_as_an_http_date_when_executed_then_the_wait_is_asked_for(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=8), usegmt=True)
    http_server.script(Reply(503, headers={"Retry-After": when}))

    with pytest.raises(TransientError) as raised:
        http_executor.execute(http_run(http_server.url))

    # the date has whole seconds: between 6 and 8 s from now, depending on the clock's fraction
    assert raised.value.retry_after is not None
    assert 6 <= raised.value.retry_after <= 8


def test_given_500_with_retry_after_when_executed_then_it_is_retried_without_a_wait(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    http_server.script(Reply(500, headers={"Retry-After": "30"}))

    with pytest.raises(TransientError) as raised:
        http_executor.execute(http_run(http_server.url))

    assert raised.value.retry_after is None


# --- where calls may go -----------------------------------------------------------------------


def test_given_a_name_resolving_to_loopback_and_an_allow_list_of_another_host_then_refused(
    http_server: ScriptedHttpServer, make_http_executor: Callable[..., HttpExecutor]
) -> None:
    executor = make_http_executor(CONFIGS_EXECUTORS_HTTP_ALLOWEDHOSTS="api.example.com")

    with pytest.raises(PermanentError, match=r"not in configs\.executors\.http\.allowed-hosts"):
        executor.execute(http_run(f"http://localhost:{http_server.port}/"))

    assert http_server.requests == []


def test_given_a_host_port_entry_when_executed_then_only_that_port_is_called(
    http_server: ScriptedHttpServer,
    closed_port: int,
    make_http_executor: Callable[..., HttpExecutor],
) -> None:
    executor = make_http_executor(
        CONFIGS_EXECUTORS_HTTP_ALLOWEDHOSTS=f"LOCALHOST.:{http_server.port}"
    )

    executor.execute(http_run(f"http://localhost:{http_server.port}/"))
    with pytest.raises(PermanentError, match=f"host localhost:{closed_port} is not in"):
        executor.execute(http_run(f"http://localhost:{closed_port}/"))

    assert len(http_server.requests) == 1


def test_given_a_name_when_executed_then_it_is_resolved_once_and_host_stays_the_name(
    http_server: ScriptedHttpServer,
) -> None:
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
        lookups.append(host)
        return [(socket.AF_INET, ("127.0.0.1", port))]

    executor = HttpExecutor(Settings.load({}), resolver=resolver)
    try:
        executor.execute(http_run(f"http://service.test:{http_server.port}/hook"))
    finally:
        executor.close()

    assert lookups == ["service.test"]
    [request] = http_server.requests
    assert request.headers["host"] == f"service.test:{http_server.port}"


def test_given_a_cookie_set_for_job_a_when_job_b_calls_the_same_host_then_it_is_not_sent(
    keep_alive_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    keep_alive_server.script(
        Reply(200, headers={"Set-Cookie": "session=job-a-secret; Path=/"}), 200
    )

    http_executor.execute(
        JobRun("job_a", 1, "run-a", {"task": "http", "url": keep_alive_server.url})
    )
    http_executor.execute(
        JobRun("job_b", 1, "run-b", {"task": "http", "url": keep_alive_server.url})
    )

    first, second = keep_alive_server.requests
    assert "cookie" not in first.headers
    assert "cookie" not in second.headers
    assert first.client_port == second.client_port  # isolated, yet on one pooled connection


def test_given_a_non_ascii_job_id_when_executed_then_x_job_id_is_percent_encoded(
    http_server: ScriptedHttpServer, http_executor: HttpExecutor
) -> None:
    http_executor.execute(
        JobRun("job_é\r\nX: 1", 1, "run-1", {"task": "http", "url": http_server.url})
    )

    [request] = http_server.requests
    assert request.headers["x-job-id"] == "job_%C3%A9%0D%0AX:%201"
    assert "x" not in request.headers


def loopback_resolver(host: str, port: int) -> list[tuple[int, tuple[Any, ...]]]:
    """Every name is 127.0.0.1: stands in for DNS, so no traffic leaves the machine."""
    return [(socket.AF_INET, ("127.0.0.1", port))]


def test_given_https_to_a_name_when_executed_then_sni_and_the_certificate_check_use_the_name(
    https_server: ScriptedHttpServer,
) -> None:
    executor = HttpExecutor(Settings.load({}), resolver=loopback_resolver)
    try:
        executor.execute(http_run(f"https://service.test:{https_server.port}/hook"))
    finally:
        executor.close()

    assert https_server.server_names == ["service.test"]
    [request] = https_server.requests
    assert request.headers["host"] == f"service.test:{https_server.port}"


def test_given_https_to_a_name_the_certificate_does_not_cover_then_the_call_fails(
    https_server: ScriptedHttpServer,
) -> None:
    executor = HttpExecutor(Settings.load({}), resolver=loopback_resolver)
    try:
        with pytest.raises(TransientError, match="CERTIFICATE_VERIFY_FAILED"):
            executor.execute(http_run(f"https://other.test:{https_server.port}/hook"))
    finally:
        executor.close()

    assert https_server.requests == []
