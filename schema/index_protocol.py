"""The federation-index protocol between realms and the hub: messages and their signature.

A realm tells the hub which users have memberships in it, either as a change
(``user_ids_added`` / ``user_ids_removed``) or as a full resync (``full: true, user_ids``).
Over HTTP (``POST /internal/federation-index`` on the hub) the body is signed with
HMAC-SHA256 over a shared secret (``settings.index_secret``); the signature covers a
timestamp and a random nonce as well, so that the hub can refuse stale and replayed calls.
In-process the same :class:`IndexMessage` is handed to the hub service object directly.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pek.schema import ids

TIMESTAMP_HEADER = "x-pek-index-timestamp"
NONCE_HEADER = "x-pek-index-nonce"
SIGNATURE_HEADER = "x-pek-index-signature"
#: How far (seconds) a signed call's timestamp may be from the hub's clock.
TIMESTAMP_WINDOW = 300
#: Most user ids one message may carry.
MAX_USERS_PER_MESSAGE = 100_000
_SIGNATURE_PREFIX = "v1="


class BadIndexMessage(ValueError):
    """A message that is not a valid federation-index update (safe to show the sender)."""


@dataclass(frozen=True)
class IndexMessage:
    """One update of the federation index, sent by one realm.

    ``user_ids`` are User global IDs. ``sequence`` grows with every message of a realm (it is
    the realm's outbox position); the hub ignores a change older than one it has applied.
    """

    realm: str
    sequence: int
    full: bool = False
    #: The whole membership set of the realm (full resync only).
    user_ids: tuple[str, ...] = ()
    user_ids_added: tuple[str, ...] = ()
    user_ids_removed: tuple[str, ...] = ()
    #: The groups (realm-local ids) each user of ``user_ids`` / ``user_ids_added`` is an
    #: active member of, now; None: the sender does not publish groups (the hub then keeps
    #: what it had). The hub decides "members of a shared group" profile policies on them.
    groups: tuple[tuple[str, tuple[int, ...]], ...] | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any]
        if self.full:
            body = {"realm": self.realm, "sequence": self.sequence, "full": True,
                    "user_ids": list(self.user_ids)}
        else:
            body = {
                "realm": self.realm,
                "sequence": self.sequence,
                "user_ids_added": list(self.user_ids_added),
                "user_ids_removed": list(self.user_ids_removed),
            }
        if self.groups is not None:
            body["groups"] = {user: list(group_ids) for user, group_ids in self.groups}
        return body

    def group_map(self) -> dict[int, set[int]]:
        """Hub-local user id -> active group ids (empty when no groups are published)."""
        found: dict[int, set[int]] = {}
        for user, group_ids in self.groups or ():
            try:
                local = ids.decode(user, expected_type="User").local_id
            except ids.InvalidGlobalId:
                raise BadIndexMessage("`groups` has a key that is not a User ID") from None
            found[local] = set(group_ids)
        return found

    @classmethod
    def from_json(cls, body: Any) -> IndexMessage:
        """Validate a decoded JSON body; :class:`BadIndexMessage` says what is wrong."""
        if not isinstance(body, dict):
            raise BadIndexMessage("the body must be a JSON object")
        realm, sequence, full = body.get("realm"), body.get("sequence"), body.get("full", False)
        if not isinstance(realm, str) or not ids.REALM_ID_RE.match(realm):
            raise BadIndexMessage("`realm` must be a realm id")
        if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 0:
            raise BadIndexMessage("`sequence` must be a non-negative integer")
        if not isinstance(full, bool):
            raise BadIndexMessage("`full` must be a boolean")
        groups = _groups(body)
        if full:
            return cls(realm, sequence, True, user_ids=_user_ids(body, "user_ids"), groups=groups)
        return cls(
            realm,
            sequence,
            False,
            user_ids_added=_user_ids(body, "user_ids_added"),
            user_ids_removed=_user_ids(body, "user_ids_removed"),
            groups=groups,
        )

    def local_user_ids(self, name: str) -> list[int]:
        """The hub-local ids of the user list ``name`` (``user_ids``, ``user_ids_added``...)."""
        values: Sequence[str] = getattr(self, name)
        try:
            return [ids.decode(v, expected_type="User").local_id for v in values]
        except ids.InvalidGlobalId:
            raise BadIndexMessage(f"`{name}` holds an ID that is not a User ID") from None


def _user_ids(body: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadIndexMessage(f"`{name}` must be a list of User IDs")
    if len(value) > MAX_USERS_PER_MESSAGE:
        raise BadIndexMessage(f"`{name}` has more than {MAX_USERS_PER_MESSAGE} IDs")
    return tuple(value)


def _groups(body: Mapping[str, Any]) -> tuple[tuple[str, tuple[int, ...]], ...] | None:
    value = body.get("groups")
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > MAX_USERS_PER_MESSAGE:
        raise BadIndexMessage("`groups` must map User IDs to lists of group ids")
    result: list[tuple[str, tuple[int, ...]]] = []
    for user, group_ids in value.items():
        if not isinstance(group_ids, list) or not all(
            isinstance(g, int) and not isinstance(g, bool) for g in group_ids
        ):
            raise BadIndexMessage("`groups` must map User IDs to lists of group ids")
        result.append((user, tuple(group_ids)))
    return tuple(result)


@dataclass(frozen=True)
class SignedHeaders:
    timestamp: int
    nonce: str
    signature: str = field(repr=False)

    def as_dict(self) -> dict[str, str]:
        return {
            TIMESTAMP_HEADER: str(self.timestamp),
            NONCE_HEADER: self.nonce,
            SIGNATURE_HEADER: self.signature,
        }


def _mac(secret: str, timestamp: int, nonce: str, body: bytes) -> str:
    digest = hmac.new(
        secret.encode(), f"{timestamp}.{nonce}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return _SIGNATURE_PREFIX + digest


def sign(secret: str, body: bytes, *, now: float | None = None) -> SignedHeaders:
    """Headers that authenticate ``body`` (a fresh nonce every call)."""
    if not secret:
        raise ValueError("an empty index secret signs nothing")
    timestamp = int(time.time() if now is None else now)
    nonce = secrets.token_hex(16)
    return SignedHeaders(timestamp, nonce, _mac(secret, timestamp, nonce, body))


class SignatureRejected(Exception):
    """A signed call the hub must refuse (the message is safe to show the caller)."""


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> str:
    """Check the signature headers of ``body``; return the nonce (for replay detection).

    Raises :class:`SignatureRejected` for a missing secret, missing or malformed headers, a
    timestamp outside :data:`TIMESTAMP_WINDOW`, or a wrong signature.
    """
    if not secret:
        raise SignatureRejected("this hub accepts no index updates (no index secret set)")
    raw_timestamp = headers.get(TIMESTAMP_HEADER, "")
    nonce = headers.get(NONCE_HEADER, "")
    signature = headers.get(SIGNATURE_HEADER, "")
    if not raw_timestamp.isdigit() or not (16 <= len(nonce) <= 64) or not signature:
        raise SignatureRejected("missing or malformed signature headers")
    if not all(c in "0123456789abcdef" for c in nonce):
        raise SignatureRejected("malformed nonce")
    timestamp = int(raw_timestamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > TIMESTAMP_WINDOW:
        raise SignatureRejected("the timestamp is outside the accepted window")
    if not hmac.compare_digest(_mac(secret, timestamp, nonce, body), signature):
        raise SignatureRejected("bad signature")
    return nonce


#: Redis keys the hub and the routers share for the federation index.
REDIS_INDEX_PREFIX = "pek:federation-index:v1:"
#: The newest index version: the hub raises it on every change, routers drop older cache entries.
REDIS_VERSION_KEY = REDIS_INDEX_PREFIX + "version"
#: Lua: set KEYS[1] to ARGV[1] only if that raises it (versions never go back).
RAISE_VERSION_SCRIPT = """
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > current then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""
