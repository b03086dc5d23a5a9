"""Liveness (``/health``: the process answers) and readiness (``/ready``: it can serve)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pek.router.edge.errors import error_body

log = logging.getLogger(__name__)

#: Answers whether the router can serve traffic now (supergraph loaded, subgraphs reachable...).
ReadinessCheck = Callable[[], Awaitable[bool]]


def _json(status: int, body: dict[str, object]) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def health_routes(ready: ReadinessCheck | None = None) -> list[Route]:
    """``GET /health`` and ``GET /ready``; without ``ready`` the router is ready once it runs."""

    async def health(request: Request) -> Response:
        return _json(200, {"status": "ok"})

    async def readiness(request: Request) -> Response:
        if ready is None:
            return _json(200, {"status": "ready"})
        try:
            is_ready = await ready()
        except Exception:
            # A failing check means "not ready", and its details belong in the log only.
            log.exception("readiness check failed")
            is_ready = False
        if is_ready:
            return _json(200, {"status": "ready"})
        return _json(503, {"status": "unavailable", **error_body("The router is not ready")})

    return [
        Route("/health", health, methods=["GET"]),
        Route("/ready", readiness, methods=["GET"]),
    ]
