"""Property tests: whatever JSON-like payload a job carries, the http and send_email validators
either return a request or raise PermanentError, never anything else (which the worker would
take for a crash and retry), and what they return can be sent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from executors import JobRun, PermanentError
from executors.http import MAX_TIMEOUT_SECONDS, METHODS, HttpExecutor, HttpRequest
from executors.http_guard import AllowList, HostEntry
from executors.send_email import Email
from jobexec.core.config import Settings

# 200 examples a property in the test command; JOBEXEC_FUZZ_EXAMPLES=5000 for a deeper run.
BOUNDED = settings(
    max_examples=int(os.environ.get("JOBEXEC_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

# Unicode text including lone surrogates, control characters and line breaks, with the
# characters that break headers, encodings and parsers drawn often.
tricky_text = st.text(
    st.sampled_from(list("a@.:/ %\t\r\n\x00\x7féП\u017f\ud800\udfff")), max_size=12
)
any_text = tricky_text | st.text(st.characters(exclude_categories=()), max_size=40)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)


def sometimes(field: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The field's plausible values, or any JSON value at all."""
    return field | json_values


hosts = st.sampled_from(
    ["example.com", "EXAMPLE.com.", "127.0.0.1", "[::1]", "bücher.example", "a b", "", "h%00"]
)
ports = st.sampled_from(["", ":80", ":0", ":65535", ":99999", ":-1", ":x"])
urls = (
    st.builds(
        lambda scheme, host, port, path: f"{scheme}://{host}{port}{path}",
        st.sampled_from(["http", "https", "ftp", "HTTP", "file"]),
        hosts,
        ports,
        any_text.map(lambda t: "/" + t),
    )
    | any_text
)
methods = st.sampled_from(["GET", "post", "TRACE", "CONNECT", "ПОСТ", "po\u017ft", "X"]) | any_text
headers = st.dictionaries(any_text, sometimes(any_text), max_size=4)
timeouts = st.sampled_from([0.001, 1, 10, 86400, 86401, -1, 0]) | st.floats() | st.integers()

http_payloads = st.fixed_dictionaries(
    {"task": st.just("http"), "url": urls},
    optional={
        "method": sometimes(methods),
        "headers": sometimes(headers),
        "body": json_values,
        "timeout_seconds": sometimes(timeouts),
    },
) | st.dictionaries(st.sampled_from(["url", "method", "headers", "body"]), json_values)
email_payloads = st.fixed_dictionaries(
    {
        "task": st.just("send_email"),
        "to": any_text | st.lists(any_text, min_size=1, max_size=3),
        "subject": any_text,
        "body": any_text,
    }
) | st.dictionaries(st.sampled_from(["to", "subject", "body"]), json_values)
job_ids = st.just("job_7f0c") | any_text


@pytest.fixture(scope="module")
def http_executor() -> Iterator[HttpExecutor]:
    executor = HttpExecutor(Settings.load({}))
    yield executor
    executor.close()


@BOUNDED
@given(payload=http_payloads, job_id=job_ids)
def test_given_any_http_payload_when_validated_then_a_sendable_request_or_permanent_error(
    http_executor: HttpExecutor, payload: dict[str, Any], job_id: str
) -> None:
    try:
        request = HttpRequest.from_payload(payload)
    except PermanentError:
        return
    assert request.method in METHODS
    assert 1 <= request.port <= 65535
    assert 0 < request.timeout_seconds <= MAX_TIMEOUT_SECONDS
    # building the request is everything but the network: it must not fail either
    built = http_executor.build(request, JobRun(job_id, 1, "run-1", payload))
    assert built.method == request.method
    assert built.headers["x-job-id"].isascii()


@BOUNDED
@given(payload=email_payloads, job_id=job_ids)
def test_given_any_email_payload_when_validated_then_a_message_or_permanent_error(
    payload: dict[str, Any], job_id: str
) -> None:
    try:
        message = Email.from_payload(payload).message("jobs@example.com", job_id)
    except PermanentError:
        return
    assert message.as_bytes()


entries = st.builds(
    lambda host, port: host + port,
    hosts | st.sampled_from(["::1", "[::1", "[::1]x", "1.2.3.4", "xn--", "a..b"]) | any_text,
    ports,
)


@BOUNDED
@given(text=st.lists(entries | any_text, max_size=4).map(",".join))
def test_given_any_allow_list_text_when_parsed_then_entries_or_value_error(text: str) -> None:
    try:
        allow = AllowList.parse(text)
    except ValueError:
        return  # the worker exits 2 naming the key
    for entry in allow.entries:
        assert entry.port is None or 1 <= entry.port <= 65535
        assert HostEntry.parse(str(entry)) == entry  # the normal form is stable
