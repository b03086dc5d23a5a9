"""The realm subgraph service: schema + realm-scoped database + HTTP app.

One process may host several realms from one database (``settings.realm_ids``), each with
its own realm-bound sessions; a request's realm is chosen here, by the endpoint it arrives
at, and nowhere else:

* ``POST /realms/<realm id>/graphql`` serves that realm (404 for a realm not hosted here);
* ``POST /graphql`` serves the default (first) realm, as single-realm deployments always did;
* in-process, :meth:`RealmSubgraph.for_realm` gives each realm's ``LocalSubgraph``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pek.hub.demo import DEMO_USER_COUNT, demo_realm_name
from pek.realm.demo import seed_realm
from pek.realm.index import (
    HttpIndexSink,
    IndexDrainer,
    IndexSink,
    index_url_from,
    pending_count,
    queue_full_resync,
)
from pek.realm.loaders import RealmLoaders
from pek.realm.permissions import Permissions
from pek.realm.policy_source import (
    CachedPolicies,
    HttpPolicySource,
    PolicySource,
    StaticPolicySource,
    policies_url_from,
)
from pek.realm.schema import RealmContext, build_schema
from pek.realm.scoping import realm_sessionmaker
from pek.router.transport import SubgraphRequest
from pek.schema.context import resolve_viewer
from pek.schema.ids import REALM_ID_RE
from pek.schema.subgraph import (
    JSON,
    SubgraphSchema,
    SubgraphService,
    graphql_error_response,
)
from pek.settings import Settings

MIGRATIONS = str(Path(__file__).parent / "migrations")
VERSION_TABLE = "realm_alembic_version"
log = logging.getLogger("pek.realm")


def hosted_realm_ids(settings: Settings) -> tuple[str, ...]:
    """The realms a process hosts: ``settings.realm_ids`` or else ``settings.realm_id``.

    Raises ValueError for an id that is not a realm id, or a repeated one.
    """
    raw = [part.strip() for part in settings.realm_ids.split(",") if part.strip()]
    realm_ids = tuple(raw) if raw else (settings.realm_id,)
    for realm_id in realm_ids:
        if not REALM_ID_RE.match(realm_id):
            raise ValueError(
                f"{realm_id!r} is not a realm id (lower-case letters, digits and dashes)"
            )
    if len(set(realm_ids)) != len(realm_ids):
        raise ValueError(f"a realm is listed twice in {','.join(realm_ids)!r}")
    return realm_ids


def policy_source_from(settings: Settings) -> PolicySource:
    """``GET /internal/policies`` of the hub the settings name, or else the domain's default
    policies (a realm with no hub: ``pek dev`` should pass an in-process source)."""
    base = settings.hub_internal_url or settings.hub_url
    if base:
        return HttpPolicySource(policies_url_from(base))
    log.info("no hub configured: the realm enforces the default policies")
    return StaticPolicySource()


def index_sink_from(settings: Settings) -> IndexSink | None:
    """The HTTP sink the settings describe, or None when no secret or hub URL is set."""
    url = settings.index_url or (index_url_from(settings.hub_url) if settings.hub_url else "")
    if not (url and settings.index_secret):
        return None
    return HttpIndexSink(url, settings.index_secret)


@dataclass(frozen=True)
class RealmEndpoint:
    """One hosted realm as a ``LocalSubgraph`` (``async execute(SubgraphRequest) -> dict``)."""

    service: RealmSubgraph
    realm_id: str

    async def execute(self, request: SubgraphRequest, *, allow_mutations: bool = True) -> JSON:
        return await self.service.execute_with(
            partial(self.service.context_for, self.realm_id),
            request,
            allow_mutations=allow_mutations,
        )


class RealmSubgraph(SubgraphService):
    """Groups, memberships, posts, semesters and evaluations of the hosted realms.

    Its database (``settings.realm_database_url``) may hold other realms too; every session
    is bound to one realm (:mod:`pek.realm.scoping`). ``index_sink`` receives the
    federation-index updates (default: :func:`index_sink_from` the settings; none: the
    outbox keeps them until a sink is configured).
    """

    role = "realm"

    def __init__(
        self,
        settings: Settings,
        *,
        demo_user_count: int = DEMO_USER_COUNT,
        index_sink: IndexSink | None = None,
        policy_source: PolicySource | None = None,
    ) -> None:
        #: The demo refers to the hub's demo users 1..demo_user_count.
        self.demo_user_count = demo_user_count
        self.realm_ids = hosted_realm_ids(settings)
        self._index_sink = index_sink if index_sink is not None else index_sink_from(settings)
        self._realm_sessions: dict[str, async_sessionmaker[AsyncSession]] = {}
        self.index_drainer: IndexDrainer | None = None
        #: The hub's policies, cached per hosted realm (see :mod:`pek.realm.policy_source`).
        self.policies = CachedPolicies(
            policy_source if policy_source is not None else policy_source_from(settings)
        )
        super().__init__(settings)

    @property
    def realm_id(self) -> str:
        """The default realm (``POST /graphql``)."""
        return self.realm_ids[0]

    def build_schema(self) -> SubgraphSchema:
        return build_schema()

    def database_url(self) -> str:
        return self.settings.realm_database_url

    def migrations(self) -> tuple[str, str]:
        return MIGRATIONS, VERSION_TABLE

    def make_sessionmaker(self, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
        self._realm_sessions = {r: realm_sessionmaker(engine, r) for r in self.realm_ids}
        return self._realm_sessions[self.realm_id]

    def sessions_of(self, realm_id: str) -> async_sessionmaker[AsyncSession]:
        """The sessions bound to hosted realm ``realm_id`` (KeyError if not hosted)."""
        self.sessionmaker  # noqa: B018  (raises if start() has not been called)
        return self._realm_sessions[realm_id]

    async def start(self) -> None:
        """Migrate and seed (see the base class), queue a full index resync of every hosted
        realm and start delivering the outbox."""
        if self._engine is not None:
            return
        await super().start()
        for realm_id in self.realm_ids:
            await queue_full_resync(self._realm_sessions[realm_id])
        if self._index_sink is not None:
            self.index_drainer = IndexDrainer(self._index_sink, self._realm_sessions)
            self.index_drainer.start()

    async def aclose(self) -> None:
        await self.policies.aclose()
        if self.index_drainer is not None:
            await self.index_drainer.aclose()
            self.index_drainer = None
        await super().aclose()

    async def pending_index_updates(self) -> int:
        """Outbox rows not yet delivered to the hub, over all hosted realms."""
        return sum([await pending_count(self.sessions_of(r)) for r in self.realm_ids])

    async def seed_demo_data(self) -> None:
        for realm_id in self.realm_ids:
            async with self._realm_sessions[realm_id].begin() as session:
                name = (
                    self.settings.realm_name
                    if realm_id == self.settings.realm_id
                    else demo_realm_name(realm_id)
                )
                await seed_realm(session, realm_id, self.demo_user_count, realm_name=name)

    def make_context(self, headers: Mapping[str, str]) -> RealmContext:
        return self.context_for(self.realm_id, headers)

    def context_for(self, realm_id: str, headers: Mapping[str, str]) -> RealmContext:
        """The request context of hosted realm ``realm_id``: its sessions, its loaders."""
        sessions = self.sessions_of(realm_id)
        drainer = self.index_drainer
        viewer_id = resolve_viewer(self.settings, headers)
        return RealmContext(
            settings=self.settings,
            viewer_id=viewer_id,
            permissions=Permissions(
                viewer_id, realm_id, sessions, partial(self.policies.get, realm_id)
            ),
            headers=headers,
            realm_id=realm_id,
            sessions=sessions,
            loaders=RealmLoaders.create(sessions),
            notify_index=drainer.notify if drainer is not None else None,
        )

    def for_realm(self, realm_id: str) -> RealmEndpoint:
        """The in-process endpoint of hosted realm ``realm_id`` (KeyError if not hosted)."""
        if realm_id not in self.realm_ids:
            raise KeyError(f"realm {realm_id!r} is not hosted by this process")
        return RealmEndpoint(self, realm_id)

    def routes(self) -> list[BaseRoute]:
        return [
            *super().routes(),
            Route("/realms/{realm_id}/graphql", self._http_realm_graphql, methods=["GET", "POST"]),
        ]

    async def _http_realm_graphql(self, request: Request) -> Response:
        realm_id = request.path_params["realm_id"]
        if realm_id not in self.realm_ids:
            return graphql_error_response(
                f"Unknown realm {realm_id!r}: it is not hosted here", 404, "REALM_NOT_FOUND"
            )
        return await self.serve_graphql_http(request, self.for_realm(realm_id).execute)
