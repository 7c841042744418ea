"""The `http` executor: calls a URL, with headers that let the receiver deduplicate tries."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from executors.base import Executor, JobRun, PermanentError, TransientError
from jobexec.config import Settings

DEFAULT_METHOD = "POST"
DEFAULT_TIMEOUT_SECONDS = 10.0
# Statuses worth another try; every other non-2xx status fails the run for good.
TRANSIENT_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class HttpRequest:
    """The validated `http` payload of a run."""

    url: str
    host: str
    method: str
    headers: Mapping[str, str]
    has_body: bool  # a GET usually has none; `"body": null` still sends JSON null
    body: Any
    timeout_seconds: float

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> HttpRequest:
        """Validate the payload; PermanentError naming the field when it is unusable."""
        url = payload.get("url")
        if not isinstance(url, str) or not url.strip():
            raise PermanentError("payload.url is required and must be a non-empty string")
        try:
            parts = urlsplit(url.strip())
            host = (parts.hostname or "").lower()
        except ValueError as exc:
            raise PermanentError(f"payload.url is not a valid URL: {exc}") from None
        if parts.scheme.lower() not in {"http", "https"}:
            raise PermanentError(f"payload.url must be http or https, got {parts.scheme!r}")
        if not host:
            raise PermanentError("payload.url has no host")

        method = payload.get("method", DEFAULT_METHOD)
        if not isinstance(method, str) or not method.isalpha():
            raise PermanentError("payload.method must be an HTTP method name such as POST")

        headers = payload.get("headers", {})
        if headers is None:
            headers = {}
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and k.isascii() and v.isascii()
            for k, v in headers.items()
        ):
            raise PermanentError("payload.headers must be an object of ASCII string values")

        timeout = payload.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
        # bool is an int subclass, but `true` seconds is a payload mistake
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise PermanentError("payload.timeout_seconds must be a positive number")

        return cls(
            url=url.strip(),
            host=host,
            method=method.upper(),
            headers=dict(headers),
            has_body="body" in payload,
            body=payload.get("body"),
            timeout_seconds=float(timeout),
        )

    @property
    def target(self) -> str:
        """The URL without query or credentials, safe to put in a failure reason."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{self.method} {parts.scheme}://{self.host}{port}{parts.path}"


class HttpExecutor(Executor):
    """Calls `payload.url`; 2xx succeeds, 408/429/5xx and network errors are retried.

    Every try carries `X-Job-Id`, `X-Job-Attempt` and an `Idempotency-Key` equal to the run id,
    so the receiver can recognise a retry of a call it already handled.
    """

    task = "http"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.allowed_hosts = settings.allowed_hosts
        # redirects are not followed: a 3xx could lead outside the host allow-list
        self.client = httpx.Client(follow_redirects=False)

    def execute(self, run: JobRun) -> None:
        request = HttpRequest.from_payload(run.payload)
        if self.allowed_hosts and request.host not in self.allowed_hosts:
            raise PermanentError(
                f"host {request.host} is not in configs.executors.http.allowed-hosts"
            )
        job_headers = {
            "X-Job-Id": run.job_id,
            "X-Job-Attempt": str(run.attempt),
            "Idempotency-Key": run.run_id,
        }
        # the job's headers win over payload headers of the same name, in any letter case
        reserved = {name.lower() for name in job_headers}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in reserved}
        headers.update(job_headers)
        body: dict[str, Any] = {"json": request.body} if request.has_body else {}
        try:
            # streamed so that a large response body is never read: only the status matters
            with self.client.stream(
                request.method,
                request.url,
                headers=headers,
                timeout=request.timeout_seconds,
                **body,
            ) as response:
                status = response.status_code
        except httpx.TimeoutException as exc:
            raise TransientError(
                f"{request.target} timed out after {request.timeout_seconds:g}s "
                f"({type(exc).__name__})"
            ) from None
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            # the message may quote a header value, which can be a credential
            raise PermanentError(
                f"{request.target} cannot be sent: malformed request ({type(exc).__name__})"
            ) from None
        except httpx.TransportError as exc:
            raise TransientError(f"{request.target} failed: {type(exc).__name__}: {exc}") from None
        except httpx.InvalidURL as exc:
            raise PermanentError(f"payload.url is not a valid URL: {exc}") from None
        _check_status(status, request)

    def close(self) -> None:
        self.client.close()


def _check_status(status: int, request: HttpRequest) -> None:
    if 200 <= status < 300:
        return
    reason = f"{request.target} answered HTTP {status}"
    if status in TRANSIENT_STATUSES or status >= 500:
        raise TransientError(reason)
    if 300 <= status < 400:
        reason += " (redirects are not followed)"
    raise PermanentError(reason)
