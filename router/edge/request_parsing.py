"""From an HTTP request to a GraphQL request: ``{query, variables, operationName, extensions}``.

POST carries a JSON body (any other content type is refused with 415, which also keeps
browsers from sending a cross-site "simple" POST); GET carries the same fields as URL
parameters, ``variables`` and ``extensions`` JSON-encoded. A request with
``extensions.persistedQuery`` may leave out its ``query`` (an automatic persisted query:
``query`` is then empty until :mod:`pek.router.edge.apq` resolves it). Every mistake is an
:class:`~pek.router.edge.errors.EdgeError` with a message a client can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request

from pek.router.edge.errors import EdgeError

#: Largest request body accepted by default (1 MiB).
DEFAULT_MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class GraphQLRequest:
    """One GraphQL-over-HTTP request, as the spec names its parameters."""

    query: str
    variables: dict[str, Any] | None = None
    operation_name: str | None = None
    extensions: dict[str, Any] = field(default_factory=dict)


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


async def read_body(request: Request, max_bytes: int) -> bytes:
    """Read the body, stopping with 413 as soon as it exceeds ``max_bytes``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > max_bytes:
                raise EdgeError(413, f"Request body is larger than {max_bytes} bytes")
        except ValueError:
            raise EdgeError(400, "Content-Length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise EdgeError(413, f"Request body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _from_fields(fields: dict[str, Any]) -> GraphQLRequest:
    query = fields.get("query")
    persisted = isinstance(fields.get("extensions"), dict) and (
        "persistedQuery" in fields["extensions"]
    )
    if query is None:
        if not persisted:
            raise EdgeError(400, "The GraphQL request must contain a 'query' string")
        query = ""  # a hash-only persisted query: pek.router.edge.apq finds its text
    elif not isinstance(query, str):
        raise EdgeError(400, "'query' must be a string")
    elif not query.strip():
        raise EdgeError(400, "'query' must not be empty")
    variables = fields.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise EdgeError(400, "'variables' must be an object (a map of variable name to value)")
    operation_name = fields.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise EdgeError(400, "'operationName' must be a string")
    extensions = fields.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise EdgeError(400, "'extensions' must be an object")
    return GraphQLRequest(
        query=query,
        variables=variables,
        operation_name=operation_name or None,
        extensions=extensions or {},
    )


async def parse_post(request: Request, *, max_body_bytes: int) -> GraphQLRequest:
    """Parse a POST: ``Content-Type: application/json`` and a JSON object body."""
    media_type = _media_type(request.headers.get("content-type"))
    if media_type != "application/json":
        shown = media_type or "none"
        raise EdgeError(
            415,
            f"Unsupported Content-Type {shown!r}: send the GraphQL request as application/json",
            headers={"Accept-Post": "application/json"},
        )
    body = await read_body(request, max_body_bytes)
    if not body.strip():
        raise EdgeError(400, "The request body is empty: expected a JSON object with a 'query'")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise EdgeError(400, f"The request body is not valid JSON ({exc.msg})") from None
    if isinstance(payload, list):
        raise EdgeError(400, "Batched requests are not supported: send one JSON object")
    if not isinstance(payload, dict):
        raise EdgeError(400, "The request body must be a JSON object with a 'query'")
    return _from_fields(payload)


def parse_get(request: Request) -> GraphQLRequest:
    """Parse a GET: the parameters in the URL, ``variables``/``extensions`` as JSON text."""
    params = request.query_params
    fields: dict[str, Any] = {}
    for name in ("query", "variables", "operationName", "extensions"):
        values = params.getlist(name)
        if len(values) > 1:
            raise EdgeError(400, f"URL parameter {name!r} is given more than once")
        if not values:
            continue
        value = values[0]
        if name in ("variables", "extensions"):
            if not value.strip():
                continue
            try:
                fields[name] = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise EdgeError(400, f"URL parameter {name!r} is not valid JSON") from None
        else:
            fields[name] = value
    return _from_fields(fields)
