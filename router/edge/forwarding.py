"""What the edge passes on to the gateway: forwarded headers and the query-plan opt-in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pek.router.transport import FORWARDED_HEADERS
from pek.settings import Settings

QUERY_PLAN_HEADER = "x-pek-query-plan"
_TRUE_VALUES = frozenset({"1", "true", "yes", "on"})
#: Never passed on as the client sent them: the caller's identity travels only as the token
#: the edge verified (:mod:`pek.router.edge.auth`), and a header naming a user never travels.
_IDENTITY_HEADERS = frozenset({"authorization", "x-pek-dev-user"})


def forwarded_headers(
    request_headers: Mapping[str, str], settings: Settings, token: str | None = None
) -> dict[str, str]:
    """The headers the subgraphs see (lower-case names): the client's harmless ones, and
    ``Authorization: Bearer <token>`` with the token the edge verified, if any."""
    headers: dict[str, str] = {}
    for name in FORWARDED_HEADERS:
        if name in _IDENTITY_HEADERS:
            continue
        value = request_headers.get(name)
        if value is not None and value.strip():
            headers[name] = value
    if token:
        headers["authorization"] = f"Bearer {token}"
    return headers


def wants_query_plan(
    request_headers: Mapping[str, str], extensions: Mapping[str, Any], settings: Settings
) -> bool:
    """Query plans are shown on request in dev mode only; elsewhere the request is ignored."""
    if not settings.dev:
        return False
    header = request_headers.get(QUERY_PLAN_HEADER, "").strip().lower()
    return header in _TRUE_VALUES or extensions.get("queryPlan") is True
