"""The `http` executor: calls a URL, with headers that let the receiver deduplicate tries."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookiejar import Cookie, CookieJar, CookiePolicy
from typing import Any
from urllib.parse import quote, urlsplit
from urllib.request import Request

import httpcore
import httpx

from executors.base import Executor, JobRun, PermanentError, Stopped, TransientError
from executors.http_guard import (
    ALLOWED_HOSTS_KEY,
    AddressRefused,
    AllowList,
    normalise_host,
)
from executors.http_network import (
    CallStopped,
    GuardedBackend,
    Resolver,
    bounded_call,
    system_resolver,
)
from jobexec.core import tracing
from jobexec.core.config import ConfigError, Settings
from jobexec.core.sections import HttpSection

DEFAULT_METHOD = "POST"
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 86400  # a day: the try's own time limit usually ends it much sooner
# TRACE echoes the request (credentials included) and CONNECT opens a tunnel: neither is a job.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Statuses worth another try; every other non-2xx status fails the run for good.
TRANSIENT_STATUSES = frozenset({408, 429})
RETRY_AFTER_STATUSES = frozenset({429, 503})
REUSE_BODY_BYTES = 64 * 1024  # bodies up to this size are read so the connection is reused
# jobexec sets these from the URL and the body; a payload that sets them would contradict it.
FORBIDDEN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")
# X-Job-Id: visible ASCII other than `%` is sent as it is, everything else percent-encoded
_JOB_ID_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


@dataclass(frozen=True)
class HttpRequest:
    """The validated `http` payload of a run."""

    url: str
    host: str  # normalised: lower-case IDNA or a canonical IP literal
    port: int  # the port connected to, the scheme's default when the URL has none
    method: str
    headers: Mapping[str, str]
    has_body: bool  # a GET usually has none; `"body": null` still sends JSON null
    body: Any
    timeout_seconds: float
    content: bytes | None = None  # the body as sent: JSON, UTF-8

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> HttpRequest:
        """Validate the payload; PermanentError naming the field when it is unusable."""
        url, host, port = _url(payload.get("url"))
        method = _method(payload.get("method", DEFAULT_METHOD))
        headers = _headers(payload.get("headers", {}))
        timeout = _timeout(payload.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
        has_body = "body" in payload
        content = _json_body(payload.get("body")) if has_body else None
        return cls(
            url=url,
            host=host,
            port=port,
            method=method,
            headers=headers,
            has_body=has_body,
            body=payload.get("body"),
            timeout_seconds=timeout,
            content=content,
        )

    @property
    def target(self) -> str:
        """The URL without query or credentials, safe to put in a failure reason."""
        parts = urlsplit(self.url)
        shown = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{parts.port}" if parts.port else ""
        return f"{self.method} {parts.scheme}://{shown}{port}{parts.path}"


def _url(value: Any) -> tuple[str, str, int]:
    if not isinstance(value, str) or not value.strip():
        raise PermanentError("payload.url is required and must be a non-empty string")
    text = value.strip()
    try:
        # httpx's own parser: the host checked is the host httpx connects to
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise PermanentError(f"payload.url is not a valid URL: {_quiet(exc)}") from None
    if url.scheme not in {"http", "https"}:
        raise PermanentError(f"payload.url must be http or https, got {_shown(url.scheme)}")
    if not url.raw_host:
        raise PermanentError("payload.url has no host")
    try:
        host = normalise_host(url.raw_host.decode("ascii"))
    except ValueError as exc:
        raise PermanentError(f"payload.url has an invalid host: {exc}") from None
    port = url.port if url.port is not None else (443 if url.scheme == "https" else 80)
    if not 1 <= port <= 65535:
        raise PermanentError(f"payload.url has port {port}, outside 1-65535")
    return text, host, port


def _method(value: Any) -> str:
    # isascii first: a long s upper-cases to "S", and Cyrillic letters pass isalpha
    if not isinstance(value, str) or not value.isascii() or value.upper() not in METHODS:
        raise PermanentError(f"payload.method must be one of {', '.join(METHODS)}")
    return value.upper()


def _headers(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PermanentError("payload.headers must be an object of header names to text")
    headers: dict[str, str] = {}
    for name, text in value.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            raise PermanentError("payload.headers has a name that is not an HTTP token")
        if not isinstance(text, str) or not _FIELD_VALUE.fullmatch(text):
            raise PermanentError(
                f"payload.headers.{name} must be ASCII text without control characters"
            )
        if name.lower() in FORBIDDEN_HEADERS:
            raise PermanentError(f"payload.headers.{name} is set by jobexec, not by a payload")
        headers[name] = text.strip(" \t")  # surrounding whitespace is not part of a value
    return headers


def _timeout(value: Any) -> float:
    # bool is an int subclass, but `true` seconds is a payload mistake; NaN fails the comparison
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_TIMEOUT_SECONDS
    ):
        raise PermanentError(
            f"payload.timeout_seconds must be a number above 0 and at most {MAX_TIMEOUT_SECONDS}"
        )
    return float(value)


def _json_body(body: Any) -> bytes:
    try:
        return json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        raise PermanentError(f"payload.body cannot be sent as JSON: {type(exc).__name__}") from None


def _shown(text: str) -> str:
    return ascii(text[:40])


def _quiet(exc: Exception) -> str:
    # httpx quotes the offending text, which may be a credential in the URL
    return type(exc).__name__


def job_id_header(job_id: str) -> str:
    """`X-Job-Id`: the job id, percent-encoded (UTF-8) where it is not visible ASCII or is `%`."""
    return quote(job_id, safe=_JOB_ID_SAFE, encoding="utf-8", errors="surrogatepass")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` value asks to wait (delta-seconds or an HTTP-date); None if bad."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        # 12 digits are more than any cap: int() of a huge digit string is slow or refused
        return float(int(text[:12])) if len(text) <= 12 else float(10**12)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _NoCookies(CookiePolicy):
    """Never store or send a cookie: one job's call must not carry another job's cookie."""

    netscape = True
    rfc2965 = False
    hide_cookie2 = True

    def set_ok(self, cookie: Cookie, request: Request) -> bool:
        return False

    def return_ok(self, cookie: Cookie, request: Request) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: Request) -> bool:
        return False

    def path_return_ok(self, path: str, request: Request) -> bool:
        return False


def guarded_transport(allow_list: AllowList, resolver: Resolver) -> httpx.HTTPTransport:
    """httpx's transport with connections made by GuardedBackend (pooled, HTTP/1.1)."""
    transport = httpx.HTTPTransport()
    # httpx 0.28 has no network_backend argument (encode/httpx#3749): give the pool ours
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        network_backend=GuardedBackend(allow_list, resolver),
    )
    return transport


class HttpExecutor(Executor):
    """Calls `payload.url`; 2xx succeeds, 408/429/5xx and network errors are retried.

    Every try carries `X-Job-Id`, `X-Job-Attempt` and an `Idempotency-Key` equal to the run id,
    so the receiver can recognise a retry of a call it already handled, and the try's W3C
    `traceparent` (and `tracestate`) when it has one. `timeout_seconds` (and
    the try's time limit, when sooner) bounds the whole call up to the response headers, and a
    try told to stop is aborted within a fraction of a second.
    """

    task = "http"

    def __init__(self, settings: Settings, resolver: Resolver = system_resolver) -> None:
        super().__init__(settings)
        section = HttpSection.from_settings(settings)
        try:
            self.allow_list = AllowList.parse(section.allowed_hosts)
        except ValueError as exc:
            raise ConfigError(
                ALLOWED_HOSTS_KEY, f"is invalid: {exc}", section.allowed_hosts_source
            ) from None
        # redirects are not followed: a 3xx could lead outside the host allow-list;
        # trust_env=False: an HTTP_PROXY variable would route calls around the address checks
        self.client = httpx.Client(
            transport=guarded_transport(self.allow_list, resolver),
            follow_redirects=False,
            trust_env=False,
            cookies=CookieJar(policy=_NoCookies()),
        )

    def build(self, request: HttpRequest, run: JobRun) -> httpx.Request:
        """The request a try sends: payload headers, then the job's headers over them."""
        job_headers = {
            "X-Job-Id": job_id_header(run.job_id),
            "X-Job-Attempt": str(run.attempt),
            "Idempotency-Key": job_id_header(run.run_id),
        }
        # The try's W3C trace context (README: Tracing); a payload's own traceparent gives way.
        job_headers.update(tracing.outgoing_headers())
        # the job's headers win over payload headers of the same name, in any letter case
        reserved = {name.lower() for name in job_headers}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in reserved}
        headers.update(job_headers)
        if request.content is not None:
            headers.setdefault("Content-Type", "application/json")
        return self.client.build_request(
            request.method,
            request.url,
            headers=headers,
            content=request.content,
            timeout=request.timeout_seconds,
        )

    def execute(self, run: JobRun) -> None:
        request = HttpRequest.from_payload(run.payload)
        try:
            self.allow_list.check_target(request.host, request.port)
        except AddressRefused as exc:
            raise PermanentError(exc.reason) from None
        outgoing = self.build(request, run)
        budget = request.timeout_seconds
        left = run.remaining()
        if left is not None and left < budget:
            budget = left
        if run.stop_requested():
            raise Stopped(f"{request.target} not called: the try was told to stop")
        try:
            with bounded_call(time.monotonic() + budget, run.stop):
                # streamed so that a large response body is never read: only the status matters
                response = self.client.send(outgoing, stream=True)
                try:
                    _drain_small_body(response)
                finally:
                    response.close()
        except CallStopped:
            raise Stopped(f"{request.target} aborted: the try was told to stop") from None
        except AddressRefused as exc:
            raise PermanentError(f"{request.target} not called: {exc.reason}") from None
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"{request.target} timed out after {budget:g}s ({type(exc).__name__})"
            ) from None
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            # the message may quote a header value, which can be a credential
            raise PermanentError(
                f"{request.target} cannot be sent: malformed request ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise TransientError(f"{request.target} failed: {type(exc).__name__}: {exc}") from None
        _check_status(response, request)

    def close(self) -> None:
        self.client.close()


def _drain_small_body(response: httpx.Response) -> None:
    """Read a short body to its end, so that its connection goes back to the pool.

    The status is known: a failure here, even the deadline or a stop, changes no outcome.
    """
    length = response.headers.get("content-length", "")
    if not (length.isascii() and length.isdigit() and int(length) <= REUSE_BODY_BYTES):
        return  # a long or unsized body: closing the connection is cheaper than reading it
    try:
        for _chunk in response.iter_raw():
            pass
    except (httpx.HTTPError, CallStopped):
        pass


def _check_status(response: httpx.Response, request: HttpRequest) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = f"{request.target} answered HTTP {status}"
    if status in TRANSIENT_STATUSES or status >= 500:
        wait = (
            retry_after_seconds(response.headers.get("Retry-After"))
            if status in RETRY_AFTER_STATUSES
            else None
        )
        if wait is not None:
            raise TransientError(f"{reason}, Retry-After {wait:g}s", retry_after=wait)
        raise TransientError(reason)
    if 300 <= status < 400:
        reason += " (redirects are not followed)"
    raise PermanentError(reason)
