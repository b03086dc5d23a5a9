"""The router's pass-through of the hub's sign-in routes (one public origin)."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from pek.router.edge.auth_proxy import AuthProxy


async def _echo(request: Request) -> Response:
    response = JSONResponse({
        "path": request.url.path,
        "query": request.url.query,
        "body": (await request.body()).decode(),
        "cookie": request.headers.get("cookie"),
        "forwarded": [request.headers.get("x-forwarded-proto"),
                      request.headers.get("x-forwarded-host")],
        "secret": request.headers.get("x-internal-secret"),
    })
    response.set_cookie("a", "1", httponly=True)
    response.set_cookie("b", "2", path="/auth")
    return response


async def _redirect(request: Request) -> Response:
    return RedirectResponse("https://provider.example/authorize?x=1", status_code=302)


HUB = Starlette(routes=[
    Route("/auth/echo", _echo, methods=["GET", "POST"]),
    Route("/auth/login", _redirect),
    Route("/.well-known/jwks.json", lambda r: JSONResponse({"keys": []})),
])


def _router(hub: httpx.AsyncClient) -> httpx.AsyncClient:
    app = Starlette(routes=AuthProxy(hub).routes())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url="https://pek.example.org")


async def test_requests_and_answers_pass_through_unchanged() -> None:
    hub = httpx.AsyncClient(transport=httpx.ASGITransport(app=HUB), base_url="http://hub")
    async with hub, _router(hub) as router:
        answer = await router.post(
            "/auth/echo?a=1&a=2", content=b'{"x": 1}',
            headers={"content-type": "application/json", "cookie": "pek_refresh=r",
                     "x-internal-secret": "must not travel"},
        )
        body: dict[str, Any] = answer.json()
        assert body == {"path": "/auth/echo", "query": "a=1&a=2", "body": '{"x": 1}',
                        "cookie": "pek_refresh=r",
                        "forwarded": ["https", "pek.example.org"], "secret": None}
        assert len(answer.headers.get_list("set-cookie")) == 2
        redirect = await router.get("/auth/login")
        assert redirect.status_code == 302
        assert redirect.headers["location"] == "https://provider.example/authorize?x=1"
        assert (await router.get("/.well-known/jwks.json")).json() == {"keys": []}


async def test_a_hub_that_does_not_answer_is_a_clear_502() -> None:
    hub = httpx.AsyncClient(base_url="http://127.0.0.1:9", timeout=2)
    async with hub, _router(hub) as router:
        answer = await router.get("/auth/login")
    assert answer.status_code == 502
    assert "does not answer" in answer.json()["errors"][0]["message"]


async def test_oversized_body_is_refused_before_the_hub() -> None:
    hub = httpx.AsyncClient(transport=httpx.ASGITransport(app=HUB), base_url="http://hub")
    async with hub, _router(hub) as router:
        answer = await router.post("/auth/echo", content=b"x" * (65 * 1024))
    assert answer.status_code == 413
