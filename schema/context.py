"""What every subgraph request carries: the viewer, client-safe errors, ID decoding.

The viewer is resolved in exactly one function, :func:`resolve_viewer`: the subject of a
hub-issued JWT that each subgraph verifies itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pek.schema import ids
from pek.schema.tokens import InvalidToken, TokenVerifier, bearer_token, verifier_for
from pek.settings import Settings

log = logging.getLogger("pek.auth")

BAD_USER_INPUT = "BAD_USER_INPUT"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class ClientError(Exception):
    """An error caused by the client's input; its message and code are shown to the client."""

    def __init__(self, message: str, code: str = BAD_USER_INPUT, **extensions: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extensions: dict[str, Any] = {"code": code, **extensions}


class Unauthenticated(ClientError):
    """A presented access token is not valid: the request is refused, not run anonymously."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="UNAUTHENTICATED")


def resolve_viewer(
    settings: Settings, headers: Mapping[str, str], verifier: TokenVerifier | None = None
) -> int | None:
    """Return the local id of the signed-in user, or ``None`` for an anonymous caller.

    The viewer is the subject of a hub access token in ``Authorization: Bearer``, verified
    here, by this subgraph, whatever the router did before (signature from the hub's JWKS,
    issuer, audience, expiry, required claims: :mod:`pek.schema.tokens`). ``verifier`` is the
    process's own by default. No header naming a user is ever trusted, in dev mode neither
    (the dev sign-in mints a real token). No token: an anonymous caller. An invalid token
    (forged, expired, another issuer or audience...) raises :class:`Unauthenticated`: the
    subgraph refuses the request (HTTP 401), as the router does at the edge.
    """
    token = bearer_token(headers)
    if token is None:
        return None
    try:
        claims = (verifier or verifier_for(settings)).verify(token)
    except InvalidToken as exc:
        log.warning("rejected an access token: %s", exc)
        raise Unauthenticated(f"The access token is not valid ({exc})") from None
    return claims.user_id


@dataclass
class RequestContext:
    """The strawberry context of one subgraph request (subclassed by hub and realm)."""

    settings: Settings
    viewer_id: int | None
    headers: Mapping[str, str] = field(default_factory=dict)


def decode_id(
    value: str, type_name: str, realm: str | None = None, *, argument: str | None = None
) -> int:
    """Decode a client-supplied global ID of ``type_name`` and return its local id.

    ``realm`` is the realm this subgraph serves: a realm-qualified ID of another realm is as
    invalid here as a forged one (the router routes by owner, so it never sends one).
    Hub-owned types are decoded with ``realm=None`` and must not carry a realm. ``argument``
    (the argument the ID came in) is named in the error: ``Invalid ID in argument "id": ...``;
    without it the message is the plain ``Invalid ID...``.
    """
    try:
        gid = ids.decode(value, expected_type=type_name)
    except ids.InvalidGlobalId as exc:
        raise ClientError(invalid_id_message(str(exc), argument)) from None
    if gid.realm != realm:
        message = ("Invalid ID: it does not name an object of this realm" if realm
                   else "Invalid ID")
        raise ClientError(invalid_id_message(message, argument))
    return gid.local_id


#: Why an ID is refused when it is not one this federation issued (named with its argument).
NOT_AN_ISSUED_ID = "it is not an ID this federation issued"


def invalid_id_message(message: str, argument: str | None) -> str:
    """``Invalid ID in argument "<argument>": <reason>`` from an ``Invalid ID[: <reason>]``
    message; ``message`` itself when no argument is named."""
    if argument is None:
        return message
    reason = message.removeprefix("Invalid ID").removeprefix(":").strip()
    return f'Invalid ID in argument "{argument}": {reason or NOT_AN_ISSUED_ID}'
