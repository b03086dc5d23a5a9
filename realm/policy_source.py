"""Where a realm gets the hub's policies, and how it caches them.

* :class:`HttpPolicySource`: ``GET <hub>/internal/policies?realm=<id>&version=<known>``; the
  hub answers ``{"unchanged": true}`` when the realm's copy is current.
* :class:`InProcessPolicySource`: all-in-one, the hub service object is asked directly.
* :class:`StaticPolicySource`: a fixed set (the domain's defaults when no hub is configured).

:class:`CachedPolicies` keeps each realm's copy for ``ttl`` seconds. When the hub cannot be
reached it keeps enforcing the last copy it had; with none at all it fails closed (no
statements, no admins: only GOD, from the realm's own data, still applies).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

import httpx

from pek.schema.policies import DEFAULT_STATEMENTS, InvalidStatement, PolicySet

log = logging.getLogger("pek.realm.policies")


class PolicyUnavailable(Exception):
    """The hub's policies could not be read."""


class PolicySource(Protocol):
    async def fetch(self, realm_id: str, known_version: int | None) -> PolicySet | None:
        """The realm's policies, or None when ``known_version`` is still current."""
        ...

    async def aclose(self) -> None: ...


class PolicyProvider(Protocol):
    """The hub side of :class:`InProcessPolicySource` (``pek.hub.service.HubSubgraph``)."""

    async def policy_snapshot(self, realm_id: str) -> PolicySet: ...


class InProcessPolicySource:
    def __init__(self, hub: PolicyProvider) -> None:
        self.hub = hub

    async def fetch(self, realm_id: str, known_version: int | None) -> PolicySet | None:
        try:
            snapshot = await self.hub.policy_snapshot(realm_id)
        except Exception as exc:  # the hub not started yet: keep the last copy
            raise PolicyUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return None if snapshot.version == known_version else snapshot

    async def aclose(self) -> None:
        return None


class StaticPolicySource:
    def __init__(self, policies: PolicySet | None = None) -> None:
        self.policies = policies or PolicySet(version=0, statements=DEFAULT_STATEMENTS)

    async def fetch(self, realm_id: str, known_version: int | None) -> PolicySet | None:
        return None if known_version == self.policies.version else self.policies

    async def aclose(self) -> None:
        return None


class HttpPolicySource:
    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url
        self._client = httpx.AsyncClient(timeout=timeout)

    async def fetch(self, realm_id: str, known_version: int | None) -> PolicySet | None:
        params: dict[str, str] = {"realm": realm_id}
        if known_version is not None:
            params["version"] = str(known_version)
        try:
            response = await self._client.get(self.url, params=params)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise PolicyUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(body, dict) and body.get("unchanged"):
            return None
        try:
            return PolicySet.from_json(body)
        except InvalidStatement as exc:
            raise PolicyUnavailable(str(exc)) from exc

    async def aclose(self) -> None:
        await self._client.aclose()


def policies_url_from(hub_url: str) -> str:
    """``.../graphql`` (or a base URL) -> ``.../internal/policies``."""
    return hub_url.rstrip("/").removesuffix("/graphql") + "/internal/policies"


class CachedPolicies:
    """Each hosted realm's copy of its policies, refreshed at most every ``ttl`` seconds."""

    def __init__(self, source: PolicySource, *, ttl: float = 5.0) -> None:
        self.source, self.ttl = source, ttl
        self._copies: dict[str, tuple[PolicySet, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def invalidate(self) -> None:
        """Ask the source again at the next use (after a grant the tests want to see now)."""
        self._copies = {realm: (policies, 0.0) for realm, (policies, _) in self._copies.items()}

    async def get(self, realm_id: str) -> PolicySet:
        copy = self._copies.get(realm_id)
        if copy is not None and time.monotonic() - copy[1] < self.ttl:
            return copy[0]
        lock = self._locks.setdefault(realm_id, asyncio.Lock())
        async with lock:
            copy = self._copies.get(realm_id)
            if copy is not None and time.monotonic() - copy[1] < self.ttl:
                return copy[0]
            known = copy[0].version if copy is not None else None
            try:
                fresh = await self.source.fetch(realm_id, known)
            except PolicyUnavailable as exc:
                if copy is None:
                    log.warning("policies of %s unavailable, failing closed: %s", realm_id, exc)
                    return PolicySet(version=-1)
                log.warning("policies of %s unavailable, keeping version %s: %s",
                            realm_id, copy[0].version, exc)
                fresh = None
            current = fresh if fresh is not None else copy[0] if copy is not None else None
            assert current is not None
            self._copies[realm_id] = (current, time.monotonic())
            return current

    async def aclose(self) -> None:
        await self.source.aclose()
