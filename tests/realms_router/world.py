"""A small federation for the tests: the test hub, realm instances in-process, a registry and a
federation index that the tests can change while the router runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from fixtures import HubInstance, RealmData, RealmInstance, supergraph_sdl

from pek.router.gateway import Gateway
from pek.router.realms import (
    FederationIndex,
    InProcessIndexSource,
    InProcessRegistrySource,
    RealmInstances,
    RealmRegistry,
    RealmRoutingTransport,
)
from pek.router.transport import InProcessTransport


@cache
def supergraph() -> str:
    return supergraph_sdl()


class World:
    """Realm instances + registry document + index document + the router over them."""

    def __init__(
        self,
        realms: Mapping[str, RealmData],
        *,
        index: Mapping[str, Sequence[str]] | None = None,
        timeout_ms: int = 2000,
        local: Mapping[str, Any] | None = None,
    ) -> None:
        self.instances = {r: RealmInstance(r, d) for r, d in realms.items()}
        self.registry_document: dict[str, Any] = {
            "version": 1,
            "realms": [
                {
                    "id": realm,
                    "name": realm.upper(),
                    "description": None,
                    "url": f"in-process://{realm}",
                    "timeout_ms": timeout_ms,
                    "enabled": True,
                    "position": n,
                }
                for n, realm in enumerate(realms)
            ],
        }
        self.index_users: dict[str, list[str]] | None = (
            {u: list(r) for u, r in index.items()} if index is not None else None
        )
        self.index_version = 1
        self.index_lookups: list[list[str]] = []
        self.registry = RealmRegistry(
            InProcessRegistrySource(lambda: self.registry_document),
            refresh_seconds=0,
            min_refresh_interval=0,
        )
        self.index = FederationIndex(InProcessIndexSource(self._lookup), ttl_seconds=60)
        self.local: dict[str, Any] = dict(local or {})
        self.layer = RealmRoutingTransport(
            InProcessTransport({"hub": HubInstance()}),
            supergraph(),
            self.registry,
            RealmInstances(local=self._local_instance),
            index=self.index,
        )
        self.gateway = Gateway(supergraph(), self.layer)

    def _local_instance(self, realm_id: str) -> Any:
        return self.local.get(realm_id) or self.instances.get(realm_id)

    def _lookup(self, users: Sequence[str]) -> dict[str, Any]:
        self.index_lookups.append(list(users))
        if self.index_users is None:
            raise ConnectionError("the hub is down")
        return {
            "users": {u: self.index_users[u] for u in users if u in self.index_users},
            "version": self.index_version,
        }

    async def query(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await self.gateway.execute(query, variables)

    def requests_to(self, realm: str) -> int:
        return len(self.instances[realm].requests)
