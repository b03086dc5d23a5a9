"""What the edge passes on to the gateway: forwarded headers and the query-plan opt-in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pek.router.transport import FORWARDED_HEADERS
from pek.settings import Settings

DEV_USER_HEADER = "x-pek-dev-user"
QUERY_PLAN_HEADER = "x-pek-query-plan"
_TRUE_VALUES = frozenset({"1", "true", "yes", "on"})


def forwarded_headers(
    request_headers: Mapping[str, str], settings: Settings, dev_user: str | None = None
) -> dict[str, str]:
    """The client headers the subgraphs may see (lower-case names).

    ``x-pek-dev-user`` impersonates anyone, so it only ever travels in dev mode: there an
    explicit header wins (handy in GraphiQL's headers editor), else the dev sign-in cookie's
    user. Outside dev mode it is dropped whatever the client sends.
    """
    headers: dict[str, str] = {}
    for name in FORWARDED_HEADERS:
        if name == DEV_USER_HEADER and not settings.dev:
            continue
        value = request_headers.get(name)
        if value is not None and value.strip():
            headers[name] = value
    if settings.dev and DEV_USER_HEADER not in headers and dev_user:
        headers[DEV_USER_HEADER] = dev_user
    return headers


def wants_query_plan(
    request_headers: Mapping[str, str], extensions: Mapping[str, Any], settings: Settings
) -> bool:
    """Query plans are shown on request in dev mode only; elsewhere the request is ignored."""
    if not settings.dev:
        return False
    header = request_headers.get(QUERY_PLAN_HEADER, "").strip().lower()
    return header in _TRUE_VALUES or extensions.get("queryPlan") is True
