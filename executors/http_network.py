"""The `http` executor's network layer: resolve once, check, connect to the checked address, and
bound every socket operation by the call's deadline and its stop flag.

httpcore gives each socket operation its own timeout, so a server that trickles one byte at a
time could hold a call for ever. Here every operation waits in short slices and, between slices,
looks at the bounds of the call running in this thread or greenlet (a context variable): past
the deadline it times out, once told to stop it raises CallStopped. Plain sockets and `select`
are used, so gevent's monkey-patching makes the same code cooperative.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import httpcore

from executors.http_guard import AllowList

# Longest single wait: how late a stop or a deadline can be noticed.
SLICE_SECONDS = 0.1

T = TypeVar("T")
Resolved = list[tuple[int, tuple[Any, ...]]]  # (family, sockaddr) pairs
Resolver = Callable[[str, int], Resolved]


class CallStopped(Exception):
    """The call was aborted because its try was told to stop."""


@dataclass(frozen=True)
class CallBounds:
    """What ends the call running in this context: a monotonic deadline and a stop flag."""

    deadline: float
    stop: threading.Event


_bounds: ContextVar[CallBounds | None] = ContextVar("jobexec_http_call_bounds", default=None)


@contextlib.contextmanager
def bounded_call(deadline: float, stop: threading.Event) -> Iterator[None]:
    """Every socket operation made inside ends by `deadline` or soon after `stop` is set."""
    token = _bounds.set(CallBounds(deadline, stop))
    try:
        yield
    finally:
        _bounds.reset(token)


def _budget(limit: float | None) -> float | None:
    """Seconds this operation may still wait; CallStopped when told to stop."""
    bounds = _bounds.get()
    if bounds is not None:
        if bounds.stop.is_set():
            raise CallStopped
        limit = bounds.deadline if limit is None else min(limit, bounds.deadline)
    return None if limit is None else limit - time.monotonic()


def _sliced(
    operation: Callable[[], T],
    sock: socket.socket,
    timeout: float | None,
    timed_out: type[Exception],
    failed: type[Exception],
) -> T:
    """Run a blocking socket operation in short waits until it completes or its bounds end."""
    limit = None if timeout is None else time.monotonic() + timeout
    while True:
        left = _budget(limit)
        if left is not None and left <= 0:
            raise timed_out("the call's deadline passed")
        sock.settimeout(SLICE_SECONDS if left is None else min(left, SLICE_SECONDS))
        try:
            return operation()
        except TimeoutError:
            continue  # a slice ended: look at the bounds again
        except OSError as exc:
            raise failed(str(exc)) from exc


def system_resolver(host: str, port: int) -> Resolved:
    """Every TCP address of `host`, by the system's resolver (gevent's when patched)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [(family, sockaddr) for family, _type, _proto, _name, sockaddr in infos]


class GuardedStream(httpcore.NetworkStream):
    """A TCP (or TLS) connection whose every operation honours the call's bounds."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return _sliced(
            lambda: self._sock.recv(max_bytes),
            self._sock,
            timeout,
            httpcore.ReadTimeout,
            httpcore.ReadError,
        )

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        while view:
            sent = _sliced(
                lambda chunk=view: self._sock.send(chunk),  # type: ignore[misc]
                self._sock,
                timeout,
                httpcore.WriteTimeout,
                httpcore.WriteError,
            )
            view = view[sent:]

    def close(self) -> None:
        self._sock.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        # SNI and certificate checks use the name from the URL, not the address connected to
        try:
            tls = ssl_context.wrap_socket(
                self._sock, server_hostname=server_hostname, do_handshake_on_connect=False
            )
        except OSError as exc:
            self._sock.close()
            raise httpcore.ConnectError(str(exc)) from exc
        try:
            _sliced(tls.do_handshake, tls, timeout, httpcore.ConnectTimeout, httpcore.ConnectError)
        except BaseException:
            tls.close()
            raise
        return GuardedStream(tls)

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._sock._sslobj if isinstance(self._sock, ssl.SSLSocket) else None  # type: ignore[attr-defined]
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "socket":
            return self._sock
        if info == "is_readable":
            # an idle pooled connection that is readable was closed (or garbled) by the server
            try:
                readable, _, _ = select.select([self._sock], [], [], 0)
            except (OSError, ValueError):
                return True
            return bool(readable)
        return None


class GuardedBackend(httpcore.NetworkBackend):
    """Resolves a host once, checks every address against the allow-list's rules, and connects
    only to a checked address."""

    def __init__(self, allow_list: AllowList, resolver: Resolver = system_resolver) -> None:
        self.allow_list = allow_list
        self.resolver = resolver

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _budget(None)
        if left is not None and left <= 0:
            raise httpcore.ConnectTimeout("the call's deadline passed")
        resolved = _resolve(self.resolver, host, port, timeout)
        if not resolved:
            raise httpcore.ConnectError(f"{host} resolved to no address")
        for _family, sockaddr in resolved:
            self.allow_list.check_address(host, ipaddress.ip_address(sockaddr[0]))
        last: Exception | None = None
        for family, sockaddr in resolved:
            try:
                return GuardedStream(_connect(family, sockaddr, timeout, socket_options))
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                if isinstance(exc, httpcore.ConnectTimeout):
                    break  # the call's time is spent: no next address
        assert last is not None
        raise last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("the http executor does not connect to Unix sockets")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def _resolve(resolver: Resolver, host: str, port: int, timeout: float | None) -> Resolved:
    """The resolver's answer, waited for in slices: a hanging DNS server holds no call past its
    deadline or its stop (the lookup itself finishes, unobserved, in its own thread)."""
    answer: list[Resolved] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            answer.append(resolver(host, port))
        except BaseException as exc:  # handed to the caller below
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
    limit = None if timeout is None else time.monotonic() + timeout
    while True:
        left = _budget(limit)
        if left is not None and left <= 0:
            raise httpcore.ConnectTimeout(f"resolving {host} did not finish before the deadline")
        if done.wait(SLICE_SECONDS if left is None else min(left, SLICE_SECONDS)):
            break
    if failure:
        exc = failure[0]
        if isinstance(exc, OSError | UnicodeError):
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        raise exc
    return answer[0]


def _connect(
    family: int,
    sockaddr: tuple[Any, ...],
    timeout: float | None,
    socket_options: Iterable[Any] | None,
) -> socket.socket:
    """A connected TCP socket to exactly `sockaddr`, within the call's bounds."""
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        for option in socket_options or ():
            sock.setsockopt(*option)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        code = sock.connect_ex(sockaddr)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK):
            raise httpcore.ConnectError(_refusal(sockaddr, code))
        limit = None if timeout is None else time.monotonic() + timeout
        while code != 0:
            left = _budget(limit)
            if left is not None and left <= 0:
                raise httpcore.ConnectTimeout("the call's deadline passed")
            wait = SLICE_SECONDS if left is None else min(left, SLICE_SECONDS)
            _, writable, failed = select.select([], [sock], [sock], wait)
            if writable or failed:
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code != 0:
                    raise httpcore.ConnectError(_refusal(sockaddr, code))
        return sock
    except BaseException:
        sock.close()
        raise


def _refusal(sockaddr: tuple[Any, ...], code: int) -> str:
    return f"[Errno {code}] {os.strerror(code)} ({sockaddr[0]} port {sockaddr[1]})"
