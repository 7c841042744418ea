"""The console's protections: basic auth, CSRF on every POST, and security headers.

Basic auth is checked before anything else is done with a request, credentials compared in
constant time. CSRF: a random token in a SameSite=Strict cookie, repeated in every form
(double submit), and an Origin (or Referer) that must be the console's own.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets

from starlette.datastructures import FormData, Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "jobexec_csrf"
CSRF_FIELD = "csrf"
SECURITY_HEADERS = {
    # No script runs on any page: forms and links only.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


class CrossSiteRequest(Exception):
    """A POST that did not come from one of the console's own pages."""


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response, the 401s included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BasicAuth:
    """Answers 401 to any request without the console's user name and password."""

    def __init__(self, app: ASGIApp, username: str, password: str) -> None:
        self.app = app
        self._username = username.encode()
        self._password = password.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.allows(Headers(scope=scope).get("authorization")):
            refusal = PlainTextResponse(
                "jobexec console: log in with the console's user name and password\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="jobexec console", charset="UTF-8"'},
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def allows(self, header: str | None) -> bool:
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        username, colon, password = decoded.partition(b":")
        # Both compared, whatever the first gave: the time taken tells nothing.
        user_ok = hmac.compare_digest(username, self._username)
        password_ok = hmac.compare_digest(password, self._password)
        return bool(colon) and user_ok and password_ok


def csrf_token(request: Request) -> tuple[str, bool]:
    """This browser's token, and whether it is new (then the response must set the cookie)."""
    token = request.cookies.get(CSRF_COOKIE, "")
    if len(token) >= 32:
        return token, False
    return secrets.token_urlsafe(32), True


def set_csrf_cookie(response: Response, token: str) -> None:
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="strict", path="/")


def check_same_origin(request: Request, form: FormData) -> None:
    """Raise CrossSiteRequest unless the POST carries this browser's token from our own page."""
    own = f"{request.url.scheme}://{request.url.netloc}"
    origin = request.headers.get("origin")
    if origin is not None:
        if origin != own:
            raise CrossSiteRequest(f"Origin {origin} is not {own}")
    else:
        referer = request.headers.get("referer")
        if referer is not None and not (referer == own or referer.startswith(own + "/")):
            raise CrossSiteRequest("Referer is not one of the console's pages")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = form.get(CSRF_FIELD)
    if not cookie or not isinstance(sent, str) or not hmac.compare_digest(cookie, sent):
        raise CrossSiteRequest("the form's token does not match this browser's")
