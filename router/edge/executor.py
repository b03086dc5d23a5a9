"""What the edge needs from the gateway: one ``execute`` method, nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

JSON = dict[str, Any]


class GraphQLExecutor(Protocol):
    """Executes one GraphQL operation against the supergraph.

    Returns the GraphQL response as JSON data: ``{"errors": [...]}`` without ``data`` for a
    request error (syntax, validation, bad variables), ``{"data": ..., "errors"?: [...]}``
    otherwise. ``pek.router.gateway.Gateway`` implements it.
    """

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        include_plan: bool = False,
    ) -> JSON: ...
