"""What every subgraph request carries: the viewer, client-safe errors, ID decoding.

The viewer is resolved in exactly one function, :func:`resolve_viewer`, so that real sign-in
(a hub-issued JWT checked by each subgraph) can replace the dev-mode header without touching
any resolver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pek.schema import ids
from pek.settings import Settings

#: Request header naming the viewer in dev mode (a User global ID or a numeric local id).
DEV_USER_HEADER = "x-pek-dev-user"

BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class ClientError(Exception):
    """An error caused by the client's input; its message and code are shown to the client."""

    def __init__(self, message: str, code: str = BAD_USER_INPUT, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions: dict[str, Any] = {"code": code, **extensions}


def resolve_viewer(settings: Settings, headers: Mapping[str, str]) -> int | None:
    """Return the local id of the signed-in user, or ``None`` for an anonymous caller.

    Only dev mode honours ``x-pek-dev-user``; elsewhere the header is ignored (a subgraph must
    never trust a bare header in production). A malformed header is treated as anonymous
    rather than an error, because it is not part of any GraphQL operation.
    """
    if not settings.dev:
        return None
    raw = headers.get(DEV_USER_HEADER, "").strip()
    if not raw:
        return None
    if raw.isdigit():
        value = int(raw)
        return value if value > 0 else None
    try:
        return ids.decode(raw, expected_type="User").local_id
    except ids.InvalidGlobalId:
        return None


@dataclass
class RequestContext:
    """The strawberry context of one subgraph request (subclassed by hub and realm)."""

    settings: Settings
    viewer_id: int | None
    headers: Mapping[str, str] = field(default_factory=dict)


def decode_id(value: str, type_name: str, realm: str | None = None) -> int:
    """Decode a client-supplied global ID of ``type_name`` and return its local id.

    ``realm`` is the realm this subgraph serves: a realm-qualified ID of another realm is as
    invalid here as a forged one (the router routes by owner, so it never sends one).
    Hub-owned types are decoded with ``realm=None`` and must not carry a realm.
    """
    try:
        gid = ids.decode(value, expected_type=type_name)
    except ids.InvalidGlobalId as exc:
        raise ClientError(str(exc)) from None
    if gid.realm != realm:
        raise ClientError("Invalid ID: it does not name an object of this realm"
                          if realm else "Invalid ID")
    return gid.local_id
