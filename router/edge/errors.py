"""Errors the edge itself raises before a request reaches the gateway."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response


class EdgeError(Exception):
    """A malformed HTTP request: answered with ``status`` and a GraphQL-shaped error body."""

    def __init__(
        self, status: int, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def error_body(message: str, **extensions: Any) -> dict[str, Any]:
    """``{"errors": [{"message": ...}]}``, the shape every GraphQL client can display."""
    error: dict[str, Any] = {"message": message}
    if extensions:
        error["extensions"] = extensions
    return {"errors": [error]}


def error_response(
    status: int,
    message: str,
    *,
    media_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An error answer from the edge (never a traceback, never a 500 for client mistakes)."""
    return Response(
        orjson.dumps(error_body(message)),
        status_code=status,
        media_type=media_type,
        headers=dict(headers or {}),
    )
