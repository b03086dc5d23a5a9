"""Automatic persisted queries (APQ), Apollo's protocol, as Apollo Client and urql speak it.

A client sends ``extensions.persistedQuery = {"version": 1, "sha256Hash": "<hex>"}``:

* with the hash alone: a known hash runs the stored query; an unknown one is answered with
  ``PERSISTED_QUERY_NOT_FOUND`` (HTTP 200 and ``Cache-Control: private, no-cache,
  must-revalidate``, as Apollo Server answers, so no CDN caches the miss), and the client sends
  the hash again with the query;
* with the hash and the query: the hash must be the query's SHA-256 (else a 400 with
  ``BAD_USER_INPUT``, nothing stored); the query is stored, then runs as any other.

Because a hash-only request is short, it fits in a GET URL, and GETs can be cached by a CDN:
GET works as for any query (CSRF prevention and "only queries over GET" still apply; a GET that
would register a mutation is refused before anything is stored).

Only a query the router would accept is stored: within ``PEK_MAX_BODY_BYTES``, parsed within
``PEK_MAX_TOKENS`` and inside the operation limits (:mod:`pek.router.limits`). Storage: a
bounded in-process LRU in front of Redis (``PEK_REDIS_URL``, entries expire after
``PEK_PERSISTED_QUERIES_TTL_SECONDS``); without Redis, or while Redis is down (connection
refused, timeout), the LRU alone, never an error.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson
from graphql import GraphQLError
from starlette.responses import Response

from pek.router.edge.errors import EdgeError
from pek.router.edge.http_methods import allow_only_queries_over_get
from pek.router.edge.request_parsing import GraphQLRequest
from pek.router.limits import OperationLimits, parse_limited
from pek.router.optional_redis import OptionalRedis
from pek.settings import Settings

log = logging.getLogger(__name__)

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
BAD_USER_INPUT = "BAD_USER_INPUT"
#: The one version of the protocol.
VERSION = 1
#: Redis keys: ``pek:apq:<sha256 hex>``.
REDIS_PREFIX = "pek:apq:"
#: Entries of the in-process LRU.
DEFAULT_LRU_SIZE = 2000
#: Largest query stored when ``PEK_MAX_BODY_BYTES`` is 0 (no body limit).
MAX_STORED_QUERY_BYTES = 1024 * 1024
#: Seconds Redis is left alone after it failed (then tried again).
#: What a persisted-query error answer must not be cached as (Apollo Server sends the same).
NO_CACHE = {"Cache-Control": "private, no-cache, must-revalidate"}

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


class PersistedQueryError(EdgeError):
    """A persisted-query answer that is not a result: carries ``extensions.code``."""

    def __init__(
        self, status: int, message: str, code: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(status, message, headers=headers)
        self.code = code

    def response(self, media_type: str) -> Response:
        body = {"errors": [{"message": self.message, "extensions": {"code": self.code}}]}
        return Response(
            orjson.dumps(body),
            status_code=self.status,
            media_type=media_type,
            headers=self.headers,
        )


def not_found() -> PersistedQueryError:
    # 200 as Apollo Server answers: clients read the code from the body and retry with the query
    return PersistedQueryError(200, "PersistedQueryNotFound", PERSISTED_QUERY_NOT_FOUND, NO_CACHE)


def not_supported() -> PersistedQueryError:
    return PersistedQueryError(
        200, "PersistedQueryNotSupported", PERSISTED_QUERY_NOT_SUPPORTED, NO_CACHE
    )


def bad_input(message: str) -> PersistedQueryError:
    return PersistedQueryError(400, message, BAD_USER_INPUT, NO_CACHE)


def sha256_hex(query: str) -> str:
    return hashlib.sha256(query.encode("utf-8")).hexdigest()


def requested_hash(extensions: Mapping[str, Any]) -> str | None:
    """The ``sha256Hash`` of ``extensions.persistedQuery`` (lower case), None when there is no
    ``persistedQuery``; a malformed one is a :class:`PersistedQueryError`."""
    persisted = extensions.get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict):
        raise bad_input("'extensions.persistedQuery' must be an object")
    version = persisted.get("version")
    if version != VERSION or isinstance(version, bool):
        raise bad_input(
            f"Persisted queries: unsupported version {version!r} (only version {VERSION} is "
            "known)"
        )
    sha = persisted.get("sha256Hash")
    if not isinstance(sha, str) or not _SHA256_HEX.fullmatch(sha):
        raise bad_input(
            "'extensions.persistedQuery.sha256Hash' must be the query's SHA-256 "
            "as 64 hexadecimal digits"
        )
    return sha.lower()


class _Lru:
    """A bounded least-recently-used map of hash -> query."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.entries: OrderedDict[str, str] = OrderedDict()

    def get(self, key: str) -> str | None:
        value = self.entries.get(key)
        if value is not None:
            self.entries.move_to_end(key)
        return value

    def put(self, key: str, value: str) -> None:
        self.entries[key] = value
        self.entries.move_to_end(key)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


class PersistedQueryStore:
    """Hash -> query: the LRU in front, Redis behind it when ``redis_url`` is set."""

    def __init__(
        self, redis_url: str = "", ttl_seconds: float = 86400.0, lru_size: int = DEFAULT_LRU_SIZE
    ) -> None:
        self.lru = _Lru(lru_size)
        self.ttl_seconds = ttl_seconds
        # A Redis outage degrades to the in-process LRU, never to an error.
        self._redis = OptionalRedis(redis_url, "persisted queries",
                                    fallback="using the in-process cache")

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def get(self, sha: str) -> str | None:
        query = self.lru.get(sha)
        if query is not None or not self._redis.usable():
            return query
        try:
            raw = await self._redis.client.get(REDIS_PREFIX + sha)
        except Exception as exc:  # redis.ConnectionError, TimeoutError, OSError ...
            self._redis.failed(exc)
            return None
        if not isinstance(raw, bytes):
            return None
        try:
            query = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if sha256_hex(query) != sha:  # never run what does not match its key
            return None
        self.lru.put(sha, query)
        return query

    async def put(self, sha: str, query: str) -> None:
        known = self.lru.get(sha) is not None
        self.lru.put(sha, query)
        if known or not self._redis.usable():
            return
        try:
            ttl = max(1, int(self.ttl_seconds)) if self.ttl_seconds > 0 else None
            await self._redis.client.set(REDIS_PREFIX + sha, query.encode("utf-8"), ex=ttl)
        except Exception as exc:
            self._redis.failed(exc)


class PersistedQueries:
    """The edge's APQ stage: turns a request with ``extensions.persistedQuery`` into one with
    its query (or an error a client acts on)."""

    def __init__(
        self,
        store: PersistedQueryStore | None,
        *,
        limits: OperationLimits | None = None,
        max_query_bytes: int = MAX_STORED_QUERY_BYTES,
    ) -> None:
        #: None: persisted queries are off (``PEK_PERSISTED_QUERIES=false``)
        self.store = store
        self.limits = limits or OperationLimits()
        self.max_query_bytes = max_query_bytes if max_query_bytes > 0 else MAX_STORED_QUERY_BYTES

    @classmethod
    def from_settings(cls, settings: Settings) -> PersistedQueries:
        store = (
            PersistedQueryStore(settings.redis_url, settings.persisted_queries_ttl_seconds)
            if settings.persisted_queries
            else None
        )
        return cls(
            store,
            limits=OperationLimits.from_settings(settings),
            max_query_bytes=min(settings.max_body_bytes or MAX_STORED_QUERY_BYTES,
                                MAX_STORED_QUERY_BYTES),
        )

    async def aclose(self) -> None:
        if self.store is not None:
            await self.store.aclose()

    async def resolve(self, request: GraphQLRequest, *, get: bool = False) -> GraphQLRequest:
        """``request`` with its query (a hash-only request gets the stored one); a query
        sent with its hash is checked and stored. ``get``: the request came as a GET."""
        sha = requested_hash(request.extensions)
        if sha is None:
            if not request.query:  # only a persisted query may come without its text
                raise EdgeError(400, "The GraphQL request must contain a 'query' string")
            return request
        if self.store is None:
            raise not_supported()
        if not request.query:
            query = await self.store.get(sha)
            if query is None:
                raise not_found()
            return replace(request, query=query)
        if sha256_hex(request.query) != sha:
            raise bad_input(
                "The persisted query's sha256Hash does not match its query (provided sha "
                "does not match query); nothing was stored"
            )
        if get:
            # refuse a mutation over GET before it is stored
            allow_only_queries_over_get(
                request.query, request.operation_name, self.limits.max_tokens
            )
        if self._acceptable(request.query):
            await self.store.put(sha, request.query)
        return request

    def _acceptable(self, query: str) -> bool:
        """Whether the gateway would take ``query`` past its limits (else it is not stored; the
        gateway reports why when it runs)."""
        if len(query.encode("utf-8")) > self.max_query_bytes:
            return False
        try:
            document = parse_limited(query, self.limits.parser_max_tokens, no_location=True)
        except GraphQLError:
            return False
        return not self.limits.check(document)
