"""A Redis client that may be absent or down (the router's caches: the federation index,
persisted queries).

A cache built on it degrades to its in-process fallback, never to an error: after a failure
the client is left alone for ``retry_seconds``, so an outage costs one warning per interval
and no request waits on a dead server more than once per interval.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("pek.router")

#: How long a failed Redis is left alone before it is tried again.
RETRY_SECONDS = 5.0


class OptionalRedis:
    """``client`` is None without a URL; :meth:`usable` says whether to try it now."""

    def __init__(self, url: str, what: str, *, fallback: str,
                 retry_seconds: float = RETRY_SECONDS) -> None:
        self.what, self.fallback, self.retry_seconds = what, fallback, retry_seconds
        self.client: Any = None
        if url:
            import redis.asyncio as redis_asyncio

            self.client = redis_asyncio.from_url(
                url, socket_timeout=0.5, socket_connect_timeout=0.5
            )
        self._broken_until = 0.0

    @property
    def configured(self) -> bool:
        return self.client is not None

    def usable(self) -> bool:
        return self.client is not None and time.monotonic() >= self._broken_until

    def failed(self, exc: Exception) -> None:
        log.warning("%s: Redis unavailable (%s); %s", self.what, exc, self.fallback)
        self._broken_until = time.monotonic() + self.retry_seconds

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
