"""How the router reaches each realm instance: the existing transports, one per realm.

``in-process://<id>`` realms are ``LocalSubgraph`` objects of this process (the all-in-one
mode: ``RealmSubgraph.for_realm(realm_id)``) behind :class:`InProcessTransport`; ``http(s)://``
realms go through :class:`HttpTransport` sharing one pooled httpx client. Transports are made
when a realm is first used and dropped when the registry removes it or moves it elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from pek.router.realms.registry import IN_PROCESS_SCHEME, RealmInfo, RegistrySnapshot
from pek.router.transport import (
    HttpTransport,
    InProcessTransport,
    LocalSubgraph,
    SubgraphRequest,
    SubgraphUnavailable,
    Transport,
)

JSON = dict[str, Any]
LocalProvider = Callable[[str], LocalSubgraph | None]
HttpTransportFactory = Callable[[str, str], Transport]


class RealmInstances:
    """Transports to realm instances, keyed by realm id and URL."""

    def __init__(
        self,
        *,
        local: LocalProvider | Mapping[str, LocalSubgraph] | None = None,
        http_factory: HttpTransportFactory | None = None,
        max_connections: int = 200,
        connect_timeout: float = 5.0,
    ) -> None:
        """``local`` gives the in-process instance of a realm id (a mapping or a function);
        ``http_factory(realm_id, url)`` makes a transport for an HTTP realm (default: an
        :class:`HttpTransport` on one shared pooled client). Per-realm timeouts are applied by
        the caller around each fetch."""
        if isinstance(local, Mapping):
            table = dict(local)
            self._local: LocalProvider = table.get
        else:
            self._local = local or (lambda realm_id: None)
        self._http_factory = http_factory
        self._client: httpx.AsyncClient | None = None
        self._max_connections = max_connections
        self._connect_timeout = connect_timeout
        self._transports: dict[str, tuple[str, Transport, bool]] = {}

    def _shared_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                # the per-realm timeout (from the registry) bounds the whole fetch
                timeout=httpx.Timeout(None, connect=self._connect_timeout),
                limits=httpx.Limits(
                    max_connections=self._max_connections,
                    max_keepalive_connections=self._max_connections,
                ),
            )
        return self._client

    def _transport(self, realm: RealmInfo) -> Transport:
        cached = self._transports.get(realm.id)
        if cached is not None and cached[0] == realm.url:
            return cached[1]
        owned = False
        if not realm.reachable:
            raise SubgraphUnavailable(realm.id, "the realm registry gives it no usable url")
        if realm.url.startswith(IN_PROCESS_SCHEME):
            target_id = realm.url[len(IN_PROCESS_SCHEME):].strip("/") or realm.id
            try:
                local = self._local(target_id)
            except KeyError:  # RealmSubgraph.for_realm: not hosted by this process
                local = None
            if local is None:
                raise SubgraphUnavailable(realm.id, "no in-process instance of this realm")
            transport: Transport = InProcessTransport({realm.id: local})
        elif self._http_factory is not None:
            transport = self._http_factory(realm.id, realm.url)
            owned = True
        else:
            transport = HttpTransport({realm.id: realm.url}, client=self._shared_client())
        self._transports[realm.id] = (realm.url, transport, owned)
        return transport

    async def fetch(self, realm: RealmInfo, request: SubgraphRequest) -> JSON:
        """Send ``request`` to ``realm``'s instance; :class:`SubgraphUnavailable` if it cannot
        be reached."""
        return await self._transport(realm).fetch(realm.id, request)

    async def sync(self, snapshot: RegistrySnapshot) -> None:
        """Drop the transports of realms the registry no longer lists (or lists elsewhere)."""
        for realm_id, (url, transport, owned) in list(self._transports.items()):
            current = snapshot.get(realm_id)
            if current is None or current.url != url:
                del self._transports[realm_id]
                if owned:
                    await transport.aclose()

    async def aclose(self) -> None:
        for _, transport, owned in self._transports.values():
            if owned:
                await transport.aclose()
        self._transports.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
