"""Opaque global IDs shared by every subgraph.

A global ID names an object anywhere in the federation. Realm-owned objects carry their realm
in the ID (``realm-qualified``), so the router can route by owner without asking anyone:

    encode("Group", 42, realm="kirdev") -> "R3JvdXA6a2lyZGV2OjQy"   (opaque to clients)

The payload is ``<Type>:<realm>:<local id>`` (the realm part is empty for hub-owned objects),
base64url-encoded without padding. Decoding checks the shape strictly: a forged or mangled ID
raises :class:`InvalidGlobalId` with a message safe to show a client.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

_TYPE_RE = re.compile(r"^[A-Z][A-Za-z0-9]{0,63}$")
REALM_ID_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_LOCAL_RE = re.compile(r"^[1-9][0-9]{0,18}$")
_MAX_ENCODED = 200


class InvalidGlobalId(ValueError):
    """A client-supplied ID is not one this federation issued."""

    def __init__(self, message: str = "Invalid ID") -> None:
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class GlobalId:
    type_name: str
    local_id: int
    realm: str | None = None

    def encode(self) -> str:
        return encode(self.type_name, self.local_id, realm=self.realm)


def encode(type_name: str, local_id: int, realm: str | None = None) -> str:
    if not _TYPE_RE.match(type_name):
        raise ValueError(f"bad type name {type_name!r}")
    if realm is not None and not REALM_ID_RE.match(realm):
        raise ValueError(f"bad realm id {realm!r}")
    if local_id < 1:
        raise ValueError("local ids start at 1")
    payload = f"{type_name}:{realm or ''}:{local_id}".encode()
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode()


def decode(value: str, expected_type: str | None = None) -> GlobalId:
    """Decode a global ID; ``expected_type`` also checks the type it names."""
    if not isinstance(value, str) or not value or len(value) > _MAX_ENCODED:
        raise InvalidGlobalId()
    try:
        padded = value + "=" * (-len(value) % 4)
        raw = base64.urlsafe_b64decode(padded.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidGlobalId() from None
    parts = raw.split(":")
    if len(parts) != 3:
        raise InvalidGlobalId()
    type_name, realm, local = parts
    if not _TYPE_RE.match(type_name) or not _LOCAL_RE.match(local):
        raise InvalidGlobalId()
    if realm and not REALM_ID_RE.match(realm):
        raise InvalidGlobalId()
    # Re-encoding must give the same string: rejects padding tricks and non-canonical forms.
    gid = GlobalId(type_name, int(local), realm or None)
    if gid.encode() != value:
        raise InvalidGlobalId()
    if expected_type is not None and type_name != expected_type:
        raise InvalidGlobalId(f"Invalid ID: expected an ID of a {expected_type}")
    return gid
