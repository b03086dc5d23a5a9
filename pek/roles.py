"""How each role of ``pek`` is assembled from the parts: the one place that knows deployments.

* ``dev``: hub + realm + router in one process, in-process transport, SQLite, demo data.
* ``hub`` / ``realm``: one subgraph behind HTTP.
* ``router``: the gateway over HTTP transports, from a supergraph file or composed at start-up
  from the subgraphs' ``_service { sdl }``.

Everything below the roles (planner, executor, resolvers) is the same in every deployment; only
the transport handed to the gateway differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import httpx
from starlette.applications import Starlette

from pek.hub.demo import in_process_demo_realms
from pek.hub.service import HubSubgraph
from pek.realm.index import InProcessIndexSink
from pek.realm.policy_source import InProcessPolicySource
from pek.realm.service import RealmSubgraph, hosted_realm_ids
from pek.router.composition import SubgraphDefinition, compose
from pek.router.dedup import DeduplicatingGateway
from pek.router.edge.auth import EdgeAuth
from pek.router.fetch_dedup import DeduplicatingTransport
from pek.router.gateway import Gateway
from pek.router.http import create_app
from pek.router.limits import OperationLimits, field_suggestions_enabled
from pek.router.metrics import MeteredTransport, RouterMetrics
from pek.router.realms.wiring import (
    realm_routing_in_process,
    realm_routing_over_http,
    uses_realm_routing,
)
from pek.router.transport import Http11Transport, HttpTransport, InProcessTransport, Transport
from pek.settings import Settings

log = logging.getLogger("pek")

#: Subgraph names, as they appear in the supergraph's ``join__Graph``.
HUB = "hub"
REALM = "realm"
#: The realms ``pek dev`` hosts in-process unless ``PEK_REALM_IDS`` says otherwise.
DEV_REALMS = ("hub", "kir", "sch-events")
#: Where ``pek router`` looks for subgraphs when neither a URL nor a supergraph is given.
DEFAULT_URLS = {HUB: "http://127.0.0.1:8001/graphql", REALM: "http://127.0.0.1:8002/graphql"}


def gateway_options(settings: Settings) -> dict[str, Any]:
    """The gateway's keyword arguments from the settings (introspection, operation limits,
    field suggestions, subgraph names in errors in dev mode only); a value it cannot use raises
    :class:`ConfigurationError`."""
    return {
        "introspection": settings.introspection,
        "limits": OperationLimits.from_settings(settings),
        "field_suggestions": field_suggestions_enabled(settings),
        "service_names": settings.dev,
    }


def router_metrics(settings: Settings) -> RouterMetrics | None:
    """The router's metrics when ``PEK_METRICS`` is on."""
    return RouterMetrics() if settings.metrics else None


def report_deduplication(
    gateway: DeduplicatingGateway,
    fetches: DeduplicatingTransport,
    metrics: RouterMetrics | None,
) -> None:
    """Report the deduplication layers' counters with ``metrics`` (read when scraped)."""
    if metrics is not None:
        metrics.count_deduplicated("inbound", lambda: gateway.stats.shared)
        metrics.count_deduplicated("fetch", lambda: fetches.stats.shared)


def hub_subgraph(settings: Settings) -> HubSubgraph:
    return HubSubgraph(settings)


def realm_subgraph(settings: Settings) -> RealmSubgraph:
    return RealmSubgraph(settings)


def local_supergraph(settings: Settings) -> str:
    """Compose the supergraph from this code's own subgraph SDLs (no database needed)."""
    urls = {name: url or DEFAULT_URLS[name] for name, url in _configured_urls(settings).items()}
    return compose(
        [
            SubgraphDefinition(HUB, urls[HUB], hub_subgraph(settings).sdl()),
            SubgraphDefinition(REALM, urls[REALM], realm_subgraph(settings).sdl()),
        ]
    )


def build_dev_app(settings: Settings) -> Starlette:
    """All-in-one: hub, the demo realms and the router in this process, talking in-process.

    The realm subgraph hosts every realm of ``settings.realm_ids`` (by default the three demo
    realms) from one database; the realm-routing layer makes them one graph, exactly as it
    does for realm processes over HTTP."""
    if not settings.realm_ids:
        settings = settings.replace(realm_ids=",".join(DEV_REALMS))
    realm_ids = hosted_realm_ids(settings)
    hub = HubSubgraph(settings, demo_realms=in_process_demo_realms(realm_ids))
    realm = RealmSubgraph(
        settings, index_sink=InProcessIndexSink(hub), policy_source=InProcessPolicySource(hub)
    )
    supergraph = compose(
        [
            SubgraphDefinition(HUB, "in-process://hub", hub.sdl()),
            SubgraphDefinition(REALM, "in-process://realm", realm.sdl()),
        ]
    )
    metrics = router_metrics(settings)
    layer = realm_routing_in_process(
        InProcessTransport({HUB: hub}),
        supergraph,
        settings,
        read_registry=hub.registry_snapshot,
        read_index=hub.read_federation_index,
        local=realm.for_realm,
        metrics=metrics,
    )
    sent: Transport = layer if metrics is None else MeteredTransport(layer, metrics)
    transport = DeduplicatingTransport(sent, enabled=settings.deduplicate_fetches)
    gateway = DeduplicatingGateway(
        Gateway(supergraph, transport, **gateway_options(settings)),
        enabled=settings.deduplicate,
    )
    report_deduplication(gateway, transport, metrics)

    async def startup() -> None:
        # The hub first: the realms' demo data refers to the hub's users, and the routing
        # layer reads the hub's registry.
        await hub.start()
        await realm.start()
        await layer.start()
        log.info(
            "pek dev: realms %s; GraphiQL at http://%s:%s/graphql",
            ", ".join(realm_ids), settings.host, settings.port,
        )

    async def shutdown() -> None:
        await transport.aclose()  # closes the routing layer and the in-process transport
        await realm.aclose()
        await hub.aclose()

    # Sign-in: the hub's /auth/* routes and keys, in this process.
    auth = EdgeAuth.from_settings(settings, hub_app=hub.asgi_app())
    return create_app(
        gateway, settings, on_startup=[startup], on_shutdown=[shutdown], auth=auth,
        metrics=metrics,
    )


def build_subgraph_app(role: str, settings: Settings) -> Starlette:
    """``pek hub`` / ``pek realm``: one subgraph served over HTTP."""
    subgraph = hub_subgraph(settings) if role == HUB else realm_subgraph(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await subgraph.start()
        try:
            yield
        finally:
            await subgraph.aclose()

    return Starlette(routes=subgraph.asgi_app().routes, lifespan=lifespan)


def build_router_app(settings: Settings) -> Starlette:
    """``pek router``: the gateway in front of subgraphs reached over HTTP."""
    if settings.supergraph:
        with open(settings.supergraph, encoding="utf-8") as handle:
            supergraph = handle.read()
    else:
        supergraph = asyncio.run(compose_from_services(settings))
    # The transport reads each subgraph's URL from the supergraph, unless configured here.
    probe = Gateway(supergraph, InProcessTransport({}), introspection=settings.introspection)
    urls = dict(probe.subgraph_urls())
    for name, url in _configured_urls(settings).items():
        if url:
            urls[name] = url
    http: Transport
    if settings.subgraph_client == "httpx":
        http = HttpTransport(urls, timeout=settings.subgraph_timeout)
    elif settings.subgraph_client == "asyncio":
        http = Http11Transport(urls, timeout=settings.subgraph_timeout)
    else:
        raise SystemExit(
            f"pek router: PEK_SUBGRAPH_CLIENT={settings.subgraph_client!r}: use asyncio or httpx"
        )
    # The realm subgraph has one instance per realm: the routing layer finds them in the hub's
    # realm registry and makes them one subgraph for the planner and executor.
    routed: Transport = http
    startup: list[Callable[[], Awaitable[None]]] = []
    metrics = router_metrics(settings)
    if uses_realm_routing(supergraph):
        layer = realm_routing_over_http(
            http, supergraph, settings, hub_url=urls[HUB], metrics=metrics
        )
        routed = layer
        startup.append(layer.start)
    if metrics is not None:
        routed = MeteredTransport(routed, metrics)
    transport = DeduplicatingTransport(routed, enabled=settings.deduplicate_fetches)
    gateway = DeduplicatingGateway(
        Gateway(supergraph, transport, **gateway_options(settings)),
        enabled=settings.deduplicate,
    )
    report_deduplication(gateway, transport, metrics)

    async def shutdown() -> None:
        await transport.aclose()  # closes the routing layer and the HTTP transport

    # Tokens are checked at the edge against the hub's JWKS (fetched once at start-up), and
    # /auth/* is passed through to the hub, so browsers see one origin.
    auth_settings = settings if settings.hub_url or HUB not in urls else settings.replace(
        hub_url=urls[HUB]
    )
    auth = EdgeAuth.from_settings(auth_settings)
    startup.append(auth.verifier.source.refresh)
    return create_app(
        gateway, settings, on_startup=startup, on_shutdown=[shutdown], auth=auth, metrics=metrics
    )


async def compose_from_services(settings: Settings, wait_seconds: float = 60.0) -> str:
    """Fetch ``_service { sdl }`` from every subgraph (waiting for them to start) and compose."""
    urls = {name: url or DEFAULT_URLS[name] for name, url in _configured_urls(settings).items()}
    definitions = []
    async with httpx.AsyncClient(timeout=5.0) as client:
        for name, url in urls.items():
            sdl = await _fetch_sdl(client, name, url, wait_seconds)
            definitions.append(SubgraphDefinition(name, url, sdl))
    return compose(definitions)


async def _fetch_sdl(client: httpx.AsyncClient, name: str, url: str, wait_seconds: float) -> str:
    deadline = time.monotonic() + wait_seconds
    last_error = ""
    while True:
        try:
            response = await client.post(url, json={"query": "{ _service { sdl } }"})
            sdl = response.json()["data"]["_service"]["sdl"]
            if isinstance(sdl, str):
                return sdl
            last_error = "no SDL in the answer"
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() >= deadline:
            raise SystemExit(
                f"pek router: subgraph {name!r} at {url} did not give its SDL ({last_error})"
            )
        log.info("waiting for subgraph %s at %s (%s)", name, url, last_error)
        await asyncio.sleep(1.0)


def _configured_urls(settings: Settings) -> Mapping[str, str]:
    return {HUB: settings.hub_url, REALM: settings.realm_url}
