"""The federation index client: in which realms a user has memberships, cached.

The hub keeps the index and serves it at ``GET <hub>/internal/federation-index?user=<User id>``
(repeatable) as ``{"users": {"<User id>": ["kir", "sem"]}, "version": 12}``. The router uses it
to send ``User`` representations only to the realms that know the user.

Caching: in Redis when ``redis_url`` is set (shared by router replicas), in memory otherwise.
An entry is used only while all of these hold:

* it is younger than ``ttl_seconds``;
* its index version is not older than the newest version seen (from any hub answer, or from
  the Redis key :data:`VERSION_KEY`, which the hub may set whenever the index changes, so every
  replica drops older entries at once);
* no mutation went through this router's realm routing since it was stored (the generation:
  a user's own writes are visible to their next read).

Whatever is not in the cache, or cannot be read (hub down, Redis down, a user missing from the
answer), is *unknown*: the caller asks every realm, so a missing index never loses data.

The hub also says which realms have ever completed a full resync (``"realms": {"kir":
{"synced_at": ...}}``). The index vouches only for those: a realm that never synced (no index
secret configured, its process not yet started, or just added) is asked for every user, since
the hub cannot know whom it holds (pass ``candidates`` to :meth:`FederationIndex.realms_for`).
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson

from pek.router.optional_redis import OptionalRedis
from pek.schema.ids import REALM_ID_RE
from pek.schema.index_protocol import (
    RAISE_VERSION_SCRIPT,
    REDIS_INDEX_PREFIX,
    REDIS_VERSION_KEY,
)

log = logging.getLogger("pek.router.realms")

_PREFIX = REDIS_INDEX_PREFIX
#: Redis key holding the newest index version (an integer); the hub may set it on changes.
VERSION_KEY = REDIS_VERSION_KEY
#: Redis key of the invalidation generation, increased by :meth:`FederationIndex.invalidate`.
GENERATION_KEY = _PREFIX + "generation"
_USER_KEY = _PREFIX + "user:"
#: Users per hub request (the query string stays short).
MAX_USERS_PER_REQUEST = 100
_MEMORY_ENTRIES = 100_000




@dataclass(frozen=True, slots=True)
class IndexAnswer:
    """What the hub said: realms per user (only the users it knows) and the index version."""

    users: dict[str, tuple[str, ...]]
    version: int
    #: Realms that completed a full resync (the index vouches for them only); None: the
    #: source gave no sync states and vouches for every realm.
    synced: frozenset[str] | None = None


def parse_index(document: Mapping[str, Any]) -> IndexAnswer:
    version = document.get("version", 0)
    users = document.get("users")
    if not isinstance(version, int) or isinstance(version, bool) or not isinstance(users, dict):
        raise ValueError("not a federation index answer")
    out: dict[str, tuple[str, ...]] = {}
    for user, realms in users.items():
        if isinstance(user, str) and isinstance(realms, list):
            out[user] = tuple(r for r in realms if isinstance(r, str) and REALM_ID_RE.match(r))
    states = document.get("realms")
    synced: frozenset[str] | None = None
    if isinstance(states, dict):
        synced = frozenset(
            realm for realm, state in states.items()
            if isinstance(realm, str) and isinstance(state, dict) and state.get("synced_at")
        )
    return IndexAnswer(out, version, synced)


class IndexSource(Protocol):
    """Where index answers come from (the hub over HTTP, or the hub in-process)."""

    async def lookup(self, user_ids: Sequence[str]) -> IndexAnswer: ...

    async def aclose(self) -> None: ...


class HttpIndexSource:
    """``GET <hub>/internal/federation-index?user=...`` over HTTP."""

    def __init__(
        self, url: str, *, timeout: float = 2.0, client: httpx.AsyncClient | None = None
    ) -> None:
        self.url = url
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(timeout=httpx.Timeout(timeout))

    async def lookup(self, user_ids: Sequence[str]) -> IndexAnswer:
        response = await self._client.get(self.url, params=[("user", u) for u in user_ids])
        response.raise_for_status()
        document = orjson.loads(response.content)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return parse_index(document)

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()


class InProcessIndexSource:
    """Index answers from a function of the hub service in this process (same document)."""

    def __init__(
        self,
        read: Callable[[Sequence[str]], Mapping[str, Any] | Awaitable[Mapping[str, Any]]],
    ) -> None:
        self._read = read

    async def lookup(self, user_ids: Sequence[str]) -> IndexAnswer:
        result = self._read(list(user_ids))
        if inspect.isawaitable(result):
            result = await result
        return parse_index(result)

    async def aclose(self) -> None:
        return None


#: What the index says of one user: their realms, and the realms it vouches for (None: all).
_Known = tuple[tuple[str, ...], frozenset[str] | None]


@dataclass(frozen=True, slots=True)
class _Entry:
    realms: tuple[str, ...]
    synced: frozenset[str] | None
    version: int
    generation: int
    expires: float


class FederationIndex:
    """Realms per user, from the hub's federation index through a cache."""

    def __init__(
        self,
        source: IndexSource,
        *,
        ttl_seconds: float = 30.0,
        redis_url: str = "",
    ) -> None:
        self.source = source
        self.ttl_seconds = ttl_seconds
        self._memory: OrderedDict[str, _Entry] = OrderedDict()
        self._version = -1
        self._generation = 0
        # Redis down degrades to no cache (never to errors).
        self._redis = OptionalRedis(redis_url, "federation index", fallback="not caching")

    async def aclose(self) -> None:
        await self._redis.aclose()
        await self.source.aclose()

    async def realms_for(
        self, user_ids: Sequence[str], candidates: Sequence[str] | None = None
    ) -> dict[str, tuple[str, ...] | None]:
        """Realms of each user; ``None`` where the index does not know (ask every realm).

        With ``candidates`` (the enabled realms, in order), each answer is the candidates to
        ask: those the index names for the user, plus those it cannot vouch for (never
        synced), in the order of ``candidates``."""
        wanted = list(dict.fromkeys(user_ids))
        known: dict[str, _Known] = {}
        if wanted:
            cached, generation = await self._cached(wanted)
            known.update(cached)
            missing = [u for u in wanted if u not in cached]
            for start in range(0, len(missing), MAX_USERS_PER_REQUEST):
                batch = missing[start : start + MAX_USERS_PER_REQUEST]
                try:
                    answer = await self.source.lookup(batch)
                except Exception as exc:
                    log.warning("federation index: lookup failed (%s: %s); asking every realm",
                                type(exc).__name__, exc)
                    continue
                found = {u: (answer.users[u], answer.synced) for u in batch
                         if u in answer.users}
                known.update(found)
                await self._store(found, answer.version, generation)
        result: dict[str, tuple[str, ...] | None] = dict.fromkeys(wanted)
        for user, (realms, synced) in known.items():
            if candidates is None:
                result[user] = realms
            else:
                result[user] = tuple(
                    realm for realm in candidates
                    if realm in realms or (synced is not None and realm not in synced)
                )
        return result

    async def invalidate(self) -> None:
        """Forget every cached entry (a realm mutation went through this router)."""
        self._generation += 1
        self._memory.clear()
        if self._redis.usable():
            try:
                await self._redis.client.incr(GENERATION_KEY)
            except Exception as exc:
                self._redis.failed(exc)

    # -- cache -------------------------------------------------------------------------------

    async def _cached(self, users: list[str]) -> tuple[dict[str, _Known], int]:
        """Valid cached entries, and the generation to stamp on what is fetched now (read
        before the fetch, so an invalidation during the fetch is not lost)."""
        if not self._redis.configured:
            generation = self._generation
            return (self._memory_get(users) if self.ttl_seconds > 0 else {}), generation
        if self.ttl_seconds <= 0 or not self._redis.usable():
            return {}, -1
        keys = [VERSION_KEY, GENERATION_KEY, *(_USER_KEY + u for u in users)]
        try:
            raw = await self._redis.client.mget(keys)
        except Exception as exc:
            self._redis.failed(exc)
            return {}, -1
        version = max(self._version, _int(raw[0], -1))
        generation = _int(raw[1], 0)
        out: dict[str, _Known] = {}
        for user, value in zip(users, raw[2:], strict=True):
            if value is None:
                continue
            try:
                entry = orjson.loads(value)
                if entry["version"] >= version and entry["generation"] == generation:
                    synced = entry.get("synced")
                    out[user] = (tuple(entry["realms"]),
                                 None if synced is None else frozenset(synced))
            except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
                continue
        return out, generation

    def _memory_get(self, users: list[str]) -> dict[str, _Known]:
        now = time.monotonic()
        out: dict[str, _Known] = {}
        for user in users:
            entry = self._memory.get(user)
            if entry is None:
                continue
            if (
                entry.expires <= now
                or entry.version < self._version
                or entry.generation != self._generation
            ):
                del self._memory[user]
                continue
            out[user] = (entry.realms, entry.synced)
        return out

    async def _store(
        self, found: Mapping[str, _Known], version: int, generation: int
    ) -> None:
        self._version = max(self._version, version)
        if self.ttl_seconds <= 0 or generation < 0:
            return
        if not self._redis.configured:
            expires = time.monotonic() + self.ttl_seconds
            for user, (realms, synced) in found.items():
                self._memory[user] = _Entry(realms, synced, version, generation, expires)
                self._memory.move_to_end(user)
            while len(self._memory) > _MEMORY_ENTRIES:
                self._memory.popitem(last=False)
            return
        if not self._redis.usable():
            return
        try:
            pipe = self._redis.client.pipeline(transaction=False)
            pipe.eval(RAISE_VERSION_SCRIPT, 1, VERSION_KEY, str(version))
            ttl_ms = max(1, int(self.ttl_seconds * 1000))
            for user, (realms, synced) in found.items():
                value = orjson.dumps({
                    "realms": list(realms),
                    "synced": None if synced is None else sorted(synced),
                    "version": version,
                    "generation": generation,
                })
                pipe.set(_USER_KEY + user, value, px=ttl_ms)
            await pipe.execute()
        except Exception as exc:
            self._redis.failed(exc)


def _int(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default
