"""Assembling the realm-routing layer for the two deployments (called from ``pek/roles.py``).

* :func:`realm_routing_over_http`: ``pek router``: registry and federation index read from the
  hub over HTTP, realm instances reached at the URLs the registry gives.
* :func:`realm_routing_in_process`: ``pek dev``: registry and index read from the hub service
  object, ``in-process://`` realms served by ``LocalSubgraph`` objects of this process.

Both return a :class:`RealmRoutingTransport`; call ``await layer.start()`` on start-up and
``await layer.aclose()`` on shutdown (it also closes the wrapped transport).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from graphql import SchemaDefinitionNode, SchemaExtensionNode, StringValueNode, parse

from pek.router.metrics import RouterMetrics
from pek.router.realms.index import (
    FederationIndex,
    HttpIndexSource,
    IndexSource,
    InProcessIndexSource,
)
from pek.router.realms.instances import HttpTransportFactory, LocalProvider, RealmInstances
from pek.router.realms.layer import RealmRoutingTransport
from pek.router.realms.registry import (
    HttpRegistrySource,
    InProcessRegistrySource,
    RealmRegistry,
    RegistrySource,
)
from pek.router.realms.routing import ROUTING_SPEC_PREFIX
from pek.router.transport import Http11Transport, LocalSubgraph, Transport
from pek.settings import Settings

REGISTRY_PATH = "/internal/realms"
INDEX_PATH = "/internal/federation-index"


def uses_realm_routing(supergraph_sdl: str) -> bool:
    """Whether the supergraph links the realm-routing spec (so it has realm subgraphs)."""
    document = parse(supergraph_sdl, no_location=True)
    for definition in document.definitions:
        if isinstance(definition, SchemaDefinitionNode | SchemaExtensionNode):
            for directive in definition.directives or ():
                for argument in directive.arguments or ():
                    value = argument.value
                    if (
                        argument.name.value == "url"
                        and isinstance(value, StringValueNode)
                        and value.value.startswith(ROUTING_SPEC_PREFIX)
                    ):
                        return True
    return False


def hub_internal_base(settings: Settings, hub_url: str) -> str:
    """Base URL of the hub's internal endpoints: ``settings.hub_internal_url``, else
    ``hub_url`` without a trailing ``/graphql``."""
    base = settings.hub_internal_url or hub_url
    base = base.rstrip("/")
    if base.endswith("/graphql"):
        base = base[: -len("/graphql")]
    return base


def realm_routing_over_http(
    inner: Transport,
    supergraph_sdl: str,
    settings: Settings,
    hub_url: str,
    *,
    subgraph: str = "realm",
    http_factory: HttpTransportFactory | None = None,
    metrics: RouterMetrics | None = None,
) -> RealmRoutingTransport:
    """The layer for ``pek router``: ``inner`` carries the hub (and any other subgraph).
    Realm instances use the HTTP client ``settings.subgraph_client`` names (one pool per
    realm with the built-in asyncio client, one shared httpx client otherwise)."""
    if http_factory is None and settings.subgraph_client == "asyncio":
        http_factory = _http11
    base = hub_internal_base(settings, hub_url)
    return _layer(
        inner, supergraph_sdl, settings, HttpRegistrySource(base + REGISTRY_PATH),
        HttpIndexSource(base + INDEX_PATH), RealmInstances(http_factory=http_factory),
        subgraph, metrics,
    )


def realm_routing_in_process(
    inner: Transport,
    supergraph_sdl: str,
    settings: Settings,
    *,
    read_registry: Callable[[], Mapping[str, Any] | Awaitable[Mapping[str, Any]]],
    read_index: Callable[[Sequence[str]], Mapping[str, Any] | Awaitable[Mapping[str, Any]]],
    local: LocalProvider | Mapping[str, LocalSubgraph],
    subgraph: str = "realm",
    metrics: RouterMetrics | None = None,
) -> RealmRoutingTransport:
    """The layer for ``pek dev``: ``read_registry()`` returns the registry document (as
    ``GET /internal/realms`` would), ``read_index(user_ids)`` the federation-index document,
    ``local`` the in-process realm instances (e.g. ``RealmSubgraph.for_realm``)."""
    return _layer(
        inner, supergraph_sdl, settings, InProcessRegistrySource(read_registry),
        InProcessIndexSource(read_index), RealmInstances(local=local), subgraph, metrics,
    )


def _layer(
    inner: Transport,
    supergraph_sdl: str,
    settings: Settings,
    registry_source: RegistrySource,
    index_source: IndexSource,
    instances: RealmInstances,
    subgraph: str,
    metrics: RouterMetrics | None,
) -> RealmRoutingTransport:
    """The layer over ``inner`` with the registry and the federation index from these
    sources, cached as the settings say."""
    registry = RealmRegistry(registry_source, refresh_seconds=settings.registry_refresh_seconds)
    index = FederationIndex(
        index_source,
        ttl_seconds=settings.federation_index_ttl_seconds,
        redis_url=settings.redis_url,
    )
    return RealmRoutingTransport(
        inner, supergraph_sdl, registry, instances, index=index, subgraph=subgraph,
        metrics=metrics,
    )


def _http11(realm_id: str, url: str) -> Transport:
    # the per-realm timeout from the registry bounds each fetch; this one is only a backstop
    return Http11Transport({realm_id: url}, timeout=60.0)
