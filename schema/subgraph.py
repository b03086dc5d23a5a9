"""What the hub and realm subgraph services have in common.

A subgraph service owns a database engine and a strawberry federation schema, executes
GraphQL requests in-process (:meth:`SubgraphService.execute`, the ``LocalSubgraph`` protocol
the router's in-process transport calls) and serves the same over HTTP
(:meth:`SubgraphService.asgi_app`). Errors are shaped here, once: client mistakes keep their
message and ``extensions.code``; anything unexpected becomes "Internal server error" and its
traceback goes to the server log only. ``GET /metrics`` (``PEK_METRICS``) counts and times the
GraphQL requests served over HTTP (:class:`pek.router.metrics.SubgraphMetrics`).
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import orjson
import strawberry
from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from strawberry.printer import print_schema
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from pek.router.dedup import operation_type
from pek.router.metrics import SubgraphMetrics, metrics_route
from pek.router.transport import SubgraphRequest
from pek.schema.context import INTERNAL_SERVER_ERROR, ClientError
from pek.schema.database import create_engine, database_answers, upgrade_to_head
from pek.schema.ids import InvalidGlobalId
from pek.settings import Settings

JSON = dict[str, Any]
log = logging.getLogger("pek.subgraph")


def _client_error(error: GraphQLError) -> Exception | None:
    """The client-caused exception behind ``error``, or None if it is a server fault."""
    original = error.original_error
    if isinstance(original, ClientError | InvalidGlobalId):
        return original
    return None


def is_unexpected(error: GraphQLError) -> bool:
    """Errors from graphql-core itself (syntax, validation, coercion) have no original error."""
    return error.original_error is not None and _client_error(error) is None


class SubgraphSchema(strawberry.federation.Schema):
    """A federation schema that logs only server faults (with traceback), not client errors."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        for error in errors:
            if is_unexpected(error):
                log.error("resolver failed: %s", error.message, exc_info=error.original_error)


def format_error(error: GraphQLError) -> JSON:
    """The client-facing JSON of one error: never a stack trace or an internal message."""
    formatted: JSON = dict(error.formatted)
    client = _client_error(error)
    if client is not None:
        formatted["message"] = str(client)
        extensions = dict(client.extensions) if isinstance(client, ClientError) else {}
        extensions.setdefault("code", "BAD_USER_INPUT")
        formatted["extensions"] = extensions
    elif error.original_error is not None:
        formatted["message"] = "Internal server error"
        formatted["extensions"] = {"code": INTERNAL_SERVER_ERROR}
    return formatted


def format_result(result: ExecutionResult) -> JSON:
    response: JSON = {"data": result.data}
    if result.errors:
        response["errors"] = [format_error(e) for e in result.errors]
    return response


class SubgraphService(ABC):
    """Base of :class:`pek.hub.service.HubSubgraph` and :class:`pek.realm.service.RealmSubgraph`."""

    #: Name used in logs and health answers.
    role: str = "subgraph"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.schema: SubgraphSchema = self.build_schema()
        self._engine: AsyncEngine | None = None
        self._sessionmaker: async_sessionmaker[AsyncSession] | None = None
        #: requests served over HTTP (None with ``PEK_METRICS`` off)
        self.metrics = SubgraphMetrics() if settings.metrics else None
        self._kinds: OrderedDict[tuple[str, str | None], str | None] = OrderedDict()

    # -- what each subgraph provides ---------------------------------------------------------

    @abstractmethod
    def build_schema(self) -> SubgraphSchema: ...

    @abstractmethod
    def database_url(self) -> str: ...

    @abstractmethod
    def migrations(self) -> tuple[str, str]:
        """(Alembic script location, version table name)."""

    @abstractmethod
    def make_sessionmaker(self, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]: ...

    @abstractmethod
    async def seed_demo_data(self) -> None:
        """Create the demo data if the database holds none of this subgraph's data."""

    @abstractmethod
    def make_context(self, headers: Mapping[str, str]) -> object: ...

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError(f"{type(self).__name__}.start() has not been called")
        return self._engine

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        if self._sessionmaker is None:
            raise RuntimeError(f"{type(self).__name__}.start() has not been called")
        return self._sessionmaker

    async def start(self) -> None:
        """Create the engine, migrate if ``settings.migrate``, seed if ``settings.demo_data``."""
        if self._engine is not None:
            return
        self._engine = create_engine(self.database_url())
        if self.settings.migrate:
            script_location, version_table = self.migrations()
            await upgrade_to_head(self._engine, script_location, version_table)
        self._sessionmaker = self.make_sessionmaker(self._engine)
        if self.settings.demo_data:
            await self.seed_demo_data()

    async def aclose(self) -> None:
        """Dispose of the engine (closes pooled connections)."""
        if self._engine is not None:
            await self._engine.dispose()
        self._engine = None
        self._sessionmaker = None

    # -- GraphQL -----------------------------------------------------------------------------

    def sdl(self) -> str:
        """The subgraph SDL exactly as ``_service { sdl }`` returns it."""
        return print_schema(self.schema)

    async def execute(
        self, request: SubgraphRequest, *, allow_mutations: bool = True
    ) -> JSON:
        """Execute one GraphQL request; always returns a GraphQL response, never raises."""
        return await self.execute_with(self.make_context, request, allow_mutations=allow_mutations)

    async def execute_with(
        self,
        make_context: Callable[[Mapping[str, str]], object],
        request: SubgraphRequest,
        *,
        allow_mutations: bool = True,
    ) -> JSON:
        """Like :meth:`execute`, with the request context made by ``make_context(headers)``
        (a realm process hosting several realms makes one context per realm)."""
        try:
            context = make_context({k.lower(): v for k, v in request.headers.items()})
            allowed = None if allow_mutations else {OperationType.QUERY}
            result = await self.schema.execute(
                request.query,
                variable_values=dict(request.variables) if request.variables else None,
                context_value=context,
                operation_name=request.operation_name,
                allowed_operation_types=allowed,
            )
        except ClientError as exc:  # refused before execution (an invalid token): no data
            return {"errors": [{"message": exc.message, "extensions": exc.extensions}]}
        except Exception:
            log.exception("%s: request failed outside of any resolver", self.role)
            return {
                "data": None,
                "errors": [
                    {"message": "Internal server error",
                     "extensions": {"code": INTERNAL_SERVER_ERROR}}
                ],
            }
        return format_result(result)

    def asgi_app(self) -> Starlette:
        """The HTTP app: the routes of :meth:`routes`."""
        return Starlette(routes=self.routes())

    def routes(self) -> list[BaseRoute]:
        """POST/GET ``/graphql`` (GraphQL over HTTP, JSON), ``GET /health`` and ``GET /metrics``
        (``PEK_METRICS``); subclasses add their own."""
        routes: list[BaseRoute] = [
            Route("/graphql", self._http_graphql, methods=["GET", "POST"]),
            Route("/health", self._http_health, methods=["GET"]),
        ]
        if self.metrics is not None:
            routes.append(metrics_route(self.metrics.registry))
        return routes

    async def _http_graphql(self, request: Request) -> Response:
        return await self.serve_graphql_http(request, self.execute)

    async def serve_graphql_http(self, request: Request, execute: HttpExecutor) -> Response:
        """Answer one GraphQL-over-HTTP request with ``execute`` (``self.execute`` or one
        realm's)."""
        metrics = self.metrics
        started = time.perf_counter()
        parsed = await parse_graphql_http(request)
        if isinstance(parsed, Response):
            if metrics is not None:
                metrics.request("unknown", parsed.status_code, time.perf_counter() - started)
            return parsed
        # GraphQL over HTTP: GET must not change anything.
        result = await execute(parsed, allow_mutations=request.method == "POST")
        status = 200
        if "data" not in result and any(
            (e.get("extensions") or {}).get("code") == "UNAUTHENTICATED"
            for e in result.get("errors") or ()
        ):
            status = 401
        response = Response(
            orjson.dumps(result), status_code=status, media_type="application/json"
        )
        if metrics is not None:
            kind = operation_type(parsed.query, parsed.operation_name, self._kinds)
            while len(self._kinds) > 1000:
                self._kinds.popitem(last=False)
            metrics.request(kind or "unknown", status, time.perf_counter() - started)
        return response

    async def _http_health(self, request: Request) -> Response:
        if self._engine is not None and await database_answers(self._engine):
            return Response(orjson.dumps({"status": "ok"}), media_type="application/json")
        return Response(
            orjson.dumps({"status": "unavailable", "reason": "the database does not answer"}),
            status_code=503,
            media_type="application/json",
        )


class HttpExecutor(Protocol):
    async def __call__(
        self, request: SubgraphRequest, *, allow_mutations: bool = True
    ) -> JSON: ...


async def parse_graphql_http(request: Request) -> SubgraphRequest | Response:
    """The GraphQL request in an HTTP request, or the 4xx answer to a malformed one."""
    if request.method == "GET":
        params = request.query_params
        try:
            variables = orjson.loads(params["variables"]) if params.get("variables") else None
        except orjson.JSONDecodeError:
            return _bad_request("`variables` is not valid JSON")
        body: Any = {
            "query": params.get("query"),
            "variables": variables,
            "operationName": params.get("operationName") or None,
        }
    else:
        content_type = request.headers.get("content-type", "")
        if "json" not in content_type:
            return _bad_request("send a JSON body (content-type: application/json)", 415)
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _bad_request("the body is not valid JSON")
    if not isinstance(body, dict):
        return _bad_request("the body must be a JSON object")
    query, variables, operation_name = (
        body.get("query"), body.get("variables"), body.get("operationName")
    )
    if not isinstance(query, str) or not query.strip():
        return _bad_request("`query` must be a non-empty string")
    if variables is not None and not isinstance(variables, dict):
        return _bad_request("`variables` must be an object")
    if operation_name is not None and not isinstance(operation_name, str):
        return _bad_request("`operationName` must be a string")
    return SubgraphRequest(
        query=query,
        variables=variables,
        operation_name=operation_name,
        headers={k.lower(): v for k, v in request.headers.items()},
    )


def graphql_error_response(message: str, status: int, code: str) -> Response:
    """A JSON GraphQL error answer with an HTTP status (e.g. 404 for an unknown realm)."""
    return Response(
        orjson.dumps({"errors": [{"message": message, "extensions": {"code": code}}]}),
        status_code=status,
        media_type="application/json",
    )


def _bad_request(message: str, status: int = 400) -> Response:
    return Response(
        orjson.dumps({"errors": [{"message": message}]}),
        status_code=status,
        media_type="application/json",
    )
