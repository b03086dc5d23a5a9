"""The router's public HTTP face: a Starlette app built from the edge layers.

``create_app(gateway, settings)`` serves GraphQL over HTTP at ``/graphql`` (POST JSON, GET for
queries), GraphiQL for browsers, dev sign-in (dev mode), ``/health``, ``/ready`` and
``/metrics`` (Prometheus, :mod:`pek.router.metrics`; ``PEK_METRICS``). Each concern
is a small layer in :mod:`pek.router.edge`; this module only puts them in order:

    content negotiation -> parse (POST JSON / GET params, size limit)
    -> CSRF prevention (GET) -> only queries over GET
    -> authentication (the caller's hub token, verified) -> forwarded headers,
    query-plan opt-in -> gateway -> response shaping

The hub's sign-in routes (``/auth/*``, ``/.well-known/jwks.json``) are passed through to the
hub (:mod:`pek.router.edge.auth_proxy`), so browsers see one origin.

The gateway is anything with :class:`~pek.router.edge.executor.GraphQLExecutor`'s ``execute``;
this module never imports the real one.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pek.router import devauth
from pek.router.dedup import operation_type
from pek.router.edge.apq import PersistedQueries, PersistedQueryError
from pek.router.edge.auth import EdgeAuth, Unauthenticated
from pek.router.edge.auth_proxy import AuthProxy
from pek.router.edge.content_negotiation import (
    accepts_html,
    graphql_response,
    negotiate,
    status_for,
)
from pek.router.edge.csrf import prevent_csrf
from pek.router.edge.errors import EdgeError, error_response
from pek.router.edge.executor import GraphQLExecutor
from pek.router.edge.forwarding import forwarded_headers, wants_query_plan
from pek.router.edge.health import ReadinessCheck, health_routes
from pek.router.edge.http_methods import allow_only_queries_over_get
from pek.router.edge.request_parsing import (
    GraphQLRequest,
    parse_get,
    parse_post,
)
from pek.router.graphiql import GraphiQLPage
from pek.router.metrics import RouterMetrics, metrics_route
from pek.settings import Settings

__all__ = ["GraphQLExecutor", "GraphQLEndpoint", "create_app"]

log = logging.getLogger(__name__)

GRAPHQL_PATH = "/graphql"
Hook = Callable[[], Awaitable[Any]]


class GraphQLEndpoint:
    """``GET``/``POST /graphql``: from an HTTP request to the gateway and back."""

    def __init__(
        self,
        gateway: GraphQLExecutor,
        settings: Settings,
        graphiql: GraphiQLPage,
        *,
        max_body_bytes: int | None = None,
        auth: EdgeAuth | None = None,
        metrics: RouterMetrics | None = None,
    ) -> None:
        self.gateway = gateway
        #: counts and times every answered request (None: not measured)
        self.metrics = metrics
        # (document, operation name) -> operation type, for the metrics' label (bounded)
        self._kinds: OrderedDict[tuple[str, str | None], str | None] = OrderedDict()
        self.settings = settings
        self.auth = auth or EdgeAuth.from_settings(settings)
        self.graphiql = graphiql
        self.apq = PersistedQueries.from_settings(settings)
        limit = settings.max_body_bytes if max_body_bytes is None else max_body_bytes
        #: 0 is no limit (``PEK_MAX_BODY_BYTES=0``)
        self.max_body_bytes = limit if limit > 0 else sys.maxsize

    async def handle(self, request: Request) -> Response:
        """Answer one request to the GraphQL endpoint."""
        accept = request.headers.get("accept")
        if (
            request.method in ("GET", "HEAD")
            and "query" not in request.query_params
            and accepts_html(accept)
        ):
            return await self.graphiql.render(request)
        metrics = self.metrics
        if metrics is None:
            return (await self._answer(request, accept))[0]
        started = time.perf_counter()
        try:
            response, graphql_request = await self._answer(request, accept)
        except Exception:
            metrics.request("unknown", 500, time.perf_counter() - started)
            raise
        kind = "unknown"
        if graphql_request is not None:
            kind = self._kind(graphql_request.query, graphql_request.operation_name)
        metrics.request(kind, response.status_code, time.perf_counter() - started)
        return response

    def _kind(self, query: str, operation_name: str | None) -> str:
        """The metrics label of a request's operation: query, mutation, subscription or
        unknown (cached per document, like the inbound deduplication does)."""
        if not isinstance(query, str):
            return "unknown"
        kind = operation_type(query, operation_name, self._kinds, self.settings.max_tokens or None)
        while len(self._kinds) > 1000:
            self._kinds.popitem(last=False)
        return kind or "unknown"

    async def _answer(
        self, request: Request, accept: str | None
    ) -> tuple[Response, GraphQLRequest | None]:
        """The response, and the GraphQL request when it got as far as being parsed."""
        media_type = negotiate(accept)
        if media_type is None:
            return error_response(
                406,
                "Not acceptable: this endpoint answers application/graphql-response+json "
                "or application/json",
            ), None
        try:
            graphql_request = await self._parse(request)
        except PersistedQueryError as exc:
            return exc.response(media_type), None
        except EdgeError as exc:
            return error_response(
                exc.status, exc.message, media_type=media_type, headers=exc.headers
            ), None
        return await self._execute(request, graphql_request, media_type), graphql_request

    async def _parse(self, request: Request) -> GraphQLRequest:
        if request.method == "POST":
            return await self.apq.resolve(
                await parse_post(request, max_body_bytes=self.max_body_bytes)
            )
        graphql_request = parse_get(request)
        prevent_csrf(request.headers)
        graphql_request = await self.apq.resolve(graphql_request, get=True)
        allow_only_queries_over_get(
            graphql_request.query, graphql_request.operation_name, self.settings.max_tokens
        )
        return graphql_request

    async def _execute(
        self, request: Request, graphql_request: GraphQLRequest, media_type: str
    ) -> Response:
        try:
            token = await self.auth.token_for(request, devauth.dev_user(request, self.settings))
        except Unauthenticated as exc:
            return exc.response(media_type)
        except EdgeError as exc:
            return error_response(
                exc.status, exc.message, media_type=media_type, headers=exc.headers
            )
        headers = forwarded_headers(request.headers, self.settings, token)
        include_plan = wants_query_plan(request.headers, graphql_request.extensions, self.settings)
        # a gateway that shares executions (inbound dedup) also shares their encoding
        execute_encoded = getattr(self.gateway, "execute_encoded", None)
        try:
            body: bytes | None = None
            if callable(execute_encoded):
                result, body = await execute_encoded(
                    graphql_request.query,
                    graphql_request.variables,
                    graphql_request.operation_name,
                    headers=headers,
                    include_plan=include_plan,
                )
            else:
                result = await self.gateway.execute(
                    graphql_request.query,
                    graphql_request.variables,
                    graphql_request.operation_name,
                    headers=headers,
                    include_plan=include_plan,
                )
            if not isinstance(result, dict) or not ("data" in result or "errors" in result):
                raise TypeError(f"the gateway returned {type(result).__name__}, not a response")
            if isinstance(body, bytes):
                return Response(
                    body, status_code=status_for(media_type, result), media_type=media_type
                )
            return graphql_response(result, media_type)
        except Exception:
            # Whatever went wrong is ours, not the client's: details go to the log only.
            log.exception("executing a GraphQL request failed")
            return error_response(500, "Internal server error", media_type=media_type)


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, exc.detail, headers=exc.headers)


async def _unexpected_exception(request: Request, exc: Exception) -> Response:
    log.error("unhandled exception at %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "Internal server error")


def create_app(
    gateway: GraphQLExecutor,
    settings: Settings,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    ready: ReadinessCheck | None = None,
    max_body_bytes: int | None = None,
    graphiql_assets: Path | None = None,
    auth: EdgeAuth | None = None,
    metrics: RouterMetrics | None = None,
) -> Starlette:
    """The router's public ASGI app.

    ``extra_routes`` are mounted after the built-in ones (e.g. metrics); ``on_startup`` and
    ``on_shutdown`` hooks run in the app's lifespan, in order; ``ready`` backs ``GET /ready``;
    ``max_body_bytes`` overrides ``PEK_MAX_BODY_BYTES``;
    ``graphiql_assets`` overrides where GraphiQL's npm packages are installed; ``auth``
    verifies callers' tokens and reaches the hub's sign-in routes (default:
    :meth:`EdgeAuth.from_settings`, federated). The app closes ``auth`` on shutdown.
    ``metrics`` (the role's, with its transports' and realms' series) is served at
    ``GET /metrics`` when ``PEK_METRICS`` is on (by default a set of its own: requests and
    process); with ``PEK_METRICS`` off nothing is measured or served.
    """
    auth = auth or EdgeAuth.from_settings(settings)
    if not settings.metrics:
        metrics = None
    elif metrics is None:
        metrics = RouterMetrics()
    graphiql = GraphiQLPage(gateway, settings, graphiql_assets, auth)
    endpoint = GraphQLEndpoint(
        gateway, settings, graphiql, max_body_bytes=max_body_bytes, auth=auth, metrics=metrics
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        graphiql.warn_if_assets_missing()
        for hook in on_startup:
            await hook()
        try:
            yield
        finally:
            for hook in on_shutdown:
                await hook()
            await auth.aclose()
            await endpoint.apq.aclose()

    routes: list[BaseRoute] = [
        Route(GRAPHQL_PATH, endpoint.handle, methods=["GET", "POST"]),
        *graphiql.routes(),
        *devauth.dev_auth_routes(gateway, settings, auth),
        *(AuthProxy(auth.hub).routes() if auth.hub is not None else []),
        *health_routes(ready),
        *([metrics_route(metrics.registry)] if metrics is not None else []),
        *extra_routes,
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_exception, Exception: _unexpected_exception},
    )
