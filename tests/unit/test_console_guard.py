"""The console's guard: basic auth, the CSRF checks and the security headers, on a tiny app."""

from __future__ import annotations

import base64

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from jobexec.console.guard import (
    CSRF_COOKIE,
    BasicAuth,
    CrossSiteRequest,
    SecurityHeaders,
    check_same_origin,
)

TOKEN = "t" * 43


async def act(request: Request) -> Response:
    check_same_origin(request, await request.form())
    return PlainTextResponse("done")


async def refuse(_request: Request, exc: Exception) -> Response:
    return PlainTextResponse(str(exc), status_code=403)


@pytest.fixture
def client() -> TestClient:
    app = Starlette(
        routes=[
            Route("/act", act, methods=["POST"]),
            Route("/", lambda _r: PlainTextResponse("hi")),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(BasicAuth, username="ops", password="pä55:word"),
        ],
        exception_handlers={CrossSiteRequest: refuse},
    )
    return TestClient(app, base_url="http://console.test")


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic("ops", "wrong"),
        basic("Ops", "pä55:word"),
        basic("ops", "pä55:wor"),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Bearer abc"},
        {"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()},
    ],
)
def test_given_wrong_or_no_credentials_then_401_with_a_challenge(
    client: TestClient, headers: dict[str, str]
) -> None:
    answer = client.get("/", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"].startswith("Basic ")
    assert answer.headers["x-frame-options"] == "DENY"


def test_given_the_credentials_then_the_page_with_security_headers(client: TestClient) -> None:
    answer = client.get("/", headers=basic("ops", "pä55:word"))
    assert answer.status_code == 200
    assert "script-src" not in answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


@pytest.mark.parametrize(
    ("headers", "cookie", "field", "status"),
    [
        ({"Origin": "http://console.test"}, TOKEN, TOKEN, 200),
        ({"Referer": "http://console.test/jobs/x"}, TOKEN, TOKEN, 200),
        ({}, TOKEN, TOKEN, 200),  # no Origin nor Referer: the token alone decides
        ({"Origin": "http://evil.test"}, TOKEN, TOKEN, 403),
        ({"Origin": "null"}, TOKEN, TOKEN, 403),
        ({"Referer": "http://console.test.evil.test/"}, TOKEN, TOKEN, 403),
        ({"Origin": "http://console.test"}, None, TOKEN, 403),  # no cookie: SameSite kept it
        ({"Origin": "http://console.test"}, TOKEN, "x" * 43, 403),
        ({"Origin": "http://console.test"}, TOKEN, None, 403),
    ],
)
def test_given_a_post_then_only_a_same_origin_one_with_the_token_is_done(
    client: TestClient,
    headers: dict[str, str],
    cookie: str | None,
    field: str | None,
    status: int,
) -> None:
    if cookie is not None:
        client.cookies.set(CSRF_COOKIE, cookie)
    data = {"csrf": field} if field is not None else {}
    answer = client.post("/act", data=data, headers={**basic("ops", "pä55:word"), **headers})
    assert answer.status_code == status, answer.text
