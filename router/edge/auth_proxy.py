"""The hub's sign-in routes, passed through the router: one public origin for browsers.

``/auth/*`` and ``/.well-known/jwks.json`` are forwarded to the hub unchanged (method, path,
query, body, the headers sign-in needs) and the hub's answer comes back unchanged (status,
``Location``, every ``Set-Cookie``). Cookies therefore belong to the router's origin, which is
what the browser sees. The hub learns the public origin from ``X-Forwarded-Proto`` and
``X-Forwarded-Host`` (for its callback URL) unless ``PEK_PUBLIC_URL`` fixes it.

The upstream is an ``httpx.AsyncClient``: over ``httpx.ASGITransport`` to the hub's app in
all-in-one, over the network to the hub when federated; this module never knows which.
"""

from __future__ import annotations

import logging

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pek.router.edge.errors import EdgeError, error_response
from pek.router.edge.request_parsing import read_body
from pek.schema.tokens import JWKS_PATH

log = logging.getLogger("pek.router.auth")

AUTH_PREFIX = "/auth"
#: Request headers the hub's sign-in routes read.
_REQUEST_HEADERS = (
    "accept", "accept-language", "authorization", "content-type", "cookie", "origin",
    "sec-fetch-site", "user-agent",
)
#: Response headers that describe the connection, not the answer.
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer",
    "upgrade", "proxy-authenticate", "proxy-connection", "content-encoding",
})
MAX_BODY_BYTES = 64 * 1024


class AuthProxy:
    """Forwards the sign-in routes to the hub (see the module docstring)."""

    def __init__(self, hub: httpx.AsyncClient) -> None:
        self.hub = hub

    def routes(self) -> list[Route]:
        methods = ["GET", "POST"]
        return [
            Route(AUTH_PREFIX + "/{path:path}", self.forward, methods=methods),
            Route(JWKS_PATH, self.forward, methods=["GET"]),
        ]

    async def forward(self, request: Request) -> Response:
        """Send ``request`` to the hub and return its answer as it is."""
        try:
            body = await read_body(request, MAX_BODY_BYTES) if request.method == "POST" else b""
        except EdgeError as exc:
            return error_response(exc.status, exc.message, headers=exc.headers)
        headers = {name: request.headers[name] for name in _REQUEST_HEADERS
                   if name in request.headers}
        headers["x-forwarded-proto"] = request.url.scheme
        headers["x-forwarded-host"] = request.headers.get("host", request.url.netloc)
        try:
            upstream = await self.hub.request(
                request.method,
                request.url.path,
                params=list(request.query_params.multi_items()),
                content=body,
                headers=headers,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            log.warning("sign-in pass-through to the hub failed: %s", exc)
            return error_response(502, "The sign-in service (hub) does not answer")
        response = Response(content=upstream.content, status_code=upstream.status_code)
        # Starlette set content-length for the body; keep every other header, each Set-Cookie
        # on its own line.
        response.raw_headers.extend(
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in upstream.headers.multi_items()
            if name.lower() not in _HOP_BY_HOP
        )
        return response
