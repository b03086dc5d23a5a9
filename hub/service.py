"""The hub subgraph service: schema + database + HTTP app (see :class:`HubSubgraph`)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pek.hub import federation_index, registry
from pek.hub import policies as hub_policies
from pek.hub.auth.routes import HubAuth
from pek.hub.demo import DemoRealm, demo_realm_name, seed_hub
from pek.hub.loaders import HubLoaders
from pek.hub.registry import INDEX_VERSION, RealmRecord, UnknownRealm, current_version
from pek.hub.schema import HubContext, build_schema
from pek.schema.context import resolve_viewer
from pek.schema.ids import REALM_ID_RE, InvalidGlobalId
from pek.schema.index_protocol import (
    BadIndexMessage,
    IndexMessage,
    SignatureRejected,
    verify,
)
from pek.schema.policies import PolicySet, Statement
from pek.schema.subgraph import SubgraphSchema, SubgraphService
from pek.schema.tokens import DirectoryKeySource, KeyDirectory, TokenVerifier
from pek.settings import Settings

MIGRATIONS = str(Path(__file__).parent / "migrations")
VERSION_TABLE = "hub_alembic_version"
#: Largest body of an index call (a full resync of a big realm is a few MB at most).
MAX_INDEX_BODY = 16 * 1024 * 1024
#: Most users one federation-index read may ask about.
MAX_INDEX_USERS = 1000
log = logging.getLogger("pek.hub")


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _error(status: int, code: str, message: str) -> Response:
    return _json({"error": {"code": code, "message": message}}, status)


class HubSubgraph(SubgraphService):
    """The hub: users, profiles, privacy settings, the realm registry, the federation index.

    ``start()`` creates the engine on ``settings.hub_database_url``, migrates, and seeds the
    demo users when ``settings.demo_data`` is set, registering ``demo_realms`` (default: the
    realms of the settings, ``realm_ids`` or ``realm_id``, at ``realm_url``).

    Besides ``/graphql`` and ``/health`` it serves, for routers and realms only (never expose
    ``/internal/*`` publicly):

    * ``GET /internal/realms``: the whole registry with urls and timeouts, and its version;
    * ``POST /internal/federation-index``: a realm's signed index update;
    * ``GET /internal/federation-index?user=<User id>&...``: the realms of those users.
    """

    role = "hub"
    _auth: HubAuth | None

    @property
    def auth(self) -> HubAuth:
        """Sign-in, tokens and sign-out (:mod:`pek.hub.auth.routes`); exists after start()."""
        if self._auth is None:
            raise RuntimeError("HubSubgraph.start() has not been called")
        return self._auth

    async def start(self) -> None:
        """As every subgraph, plus the default policies (when it migrates and has none), the sign-in
        routes and the first signing key."""
        await super().start()
        if self.settings.migrate:  # with the schema: a hub that migrates sets up its defaults
            async with self.sessionmaker.begin() as session:
                await hub_policies.seed_default_policies(session)
        if self._auth is None:
            self._auth = HubAuth(self.settings, self.sessionmaker)
            self._auth.start()

    async def aclose(self) -> None:
        if self._auth is not None:
            await self._auth.aclose()
            self._auth = None
        await self.index_versions.aclose()
        await super().aclose()

    def __init__(
        self, settings: Settings, *, demo_realms: Sequence[DemoRealm] | None = None
    ) -> None:
        super().__init__(settings)
        self.demo_realms = demo_realms
        #: Tells routers (through Redis) that the federation index changed.
        self.index_versions = federation_index.IndexVersionPublisher(settings.redis_url)
        self._auth = None
        #: The hub reads its own key directory rather than asking itself for its JWKS.
        self.token_verifier = TokenVerifier(
            DirectoryKeySource(KeyDirectory(settings.key_dir)),
            settings.token_issuer,
            settings.token_audience,
        )

    def build_schema(self) -> SubgraphSchema:
        return build_schema()

    def database_url(self) -> str:
        return self.settings.hub_database_url

    def migrations(self) -> tuple[str, str]:
        return MIGRATIONS, VERSION_TABLE

    def make_sessionmaker(self, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
        return async_sessionmaker(engine, expire_on_commit=False)

    def _default_demo_realms(self) -> list[DemoRealm]:
        listed = [r.strip() for r in self.settings.realm_ids.split(",") if r.strip()]
        realm_ids = listed or [self.settings.realm_id]
        return [
            DemoRealm(
                realm_id,
                self.settings.realm_name if realm_id == self.settings.realm_id
                else demo_realm_name(realm_id),
                f"The {demo_realm_name(realm_id)} realm (demo).",
                self.settings.realm_url or None,
            )
            for realm_id in realm_ids
        ]

    async def seed_demo_data(self) -> None:
        realms = self.demo_realms if self.demo_realms is not None else self._default_demo_realms()
        async with self.sessionmaker.begin() as session:
            await seed_hub(session, realms=realms)

    # -- the realm registry ------------------------------------------------------------------

    async def register_realm(
        self,
        realm_id: str,
        name: str,
        description: str | None = None,
        url: str | None = None,
        *,
        timeout_ms: int | None = None,
        enabled: bool | None = None,
        position: int | None = None,
    ) -> RealmRecord:
        """Add or update a realm of the registry (``Query.realms``, ``GET /internal/realms``).

        Raises :class:`pek.hub.registry.RegistryError` for a bad id, name, url or timeout.
        """
        async with self.sessionmaker.begin() as session:
            return await registry.put_realm(
                session, realm_id, name, description, url,
                timeout_ms=timeout_ms, enabled=enabled, position=position,
            )

    async def update_realm(self, realm_id: str, **changes: Any) -> RealmRecord:
        """Change some attributes of a realm (see :func:`pek.hub.registry.update_realm`)."""
        async with self.sessionmaker.begin() as session:
            return await registry.update_realm(session, realm_id, **changes)

    async def remove_realm(self, realm_id: str) -> bool:
        """Remove a realm and its federation-index entries; False if there was none."""
        async with self.sessionmaker.begin() as session:
            return await registry.remove_realm(session, realm_id)

    async def list_realms(self) -> list[RealmRecord]:
        async with self.sessionmaker() as session:
            return await registry.list_realms(session)

    async def registry_snapshot(self) -> dict[str, Any]:
        """What ``GET /internal/realms`` answers."""
        async with self.sessionmaker() as session:
            return await registry.registry_snapshot(session)

    # -- the federation index ----------------------------------------------------------------

    async def apply_index_message(self, message: IndexMessage, *, nonce: str | None = None) -> bool:
        """Apply a realm's index update (the in-process path, and the HTTP one after the
        signature check); False for a stale change. ``nonce`` is checked against replays."""
        now = dt.datetime.now(dt.UTC)
        async with self.sessionmaker.begin() as session:
            if nonce is not None:
                await federation_index.remember_nonce(session, nonce, now)
            changed = await federation_index.apply_message(session, message, now)
        if changed:
            async with self.sessionmaker() as session:
                version = await current_version(session, INDEX_VERSION)
            await self.index_versions.publish(version)
        return changed

    async def read_federation_index(self, user_ids: Sequence[str]) -> dict[str, Any]:
        """What ``GET /internal/federation-index`` answers for these User IDs."""
        async with self.sessionmaker() as session:
            return await federation_index.read_index(session, user_ids)

    # -- policies ----------------------------------------------------------------------------

    async def policy_snapshot(self, realm_id: str) -> PolicySet:
        """The policies realm ``realm_id`` enforces (``GET /internal/policies?realm=``)."""
        async with self.sessionmaker() as session:
            return await hub_policies.policy_snapshot(session, realm_id)

    async def grant_policy(self, statement: Statement, actor_id: int | None = None) -> int:
        """Grant ``statement`` (as ``actor_id``; None: the system); return its id."""
        async with self.sessionmaker.begin() as session:
            return (await hub_policies.grant(session, statement, actor_id)).id

    async def revoke_policy(self, policy_id: int, actor_id: int | None = None) -> bool:
        async with self.sessionmaker.begin() as session:
            return await hub_policies.revoke(session, policy_id, actor_id) is not None

    # -- HTTP --------------------------------------------------------------------------------

    def routes(self) -> list[BaseRoute]:
        return [
            *super().routes(),
            # /auth/* and /.well-known/jwks.json; the app may be built before start().
            *HubAuth.route_table(lambda: self.auth),
            Route("/internal/realms", self._http_realms, methods=["GET"]),
            Route("/internal/policies", self._http_policies, methods=["GET"]),
            Route(
                "/internal/federation-index",
                self._http_federation_index,
                methods=["GET", "POST"],
            ),
        ]

    async def _http_realms(self, request: Request) -> Response:
        return _json(await self.registry_snapshot())

    async def _http_policies(self, request: Request) -> Response:
        realm_id = request.query_params.get("realm", "")
        if not REALM_ID_RE.match(realm_id):
            return _error(400, "BAD_REQUEST", "`realm` must be a realm id")
        snapshot = await self.policy_snapshot(realm_id)
        known = request.query_params.get("version")
        if known is not None and known == str(snapshot.version):
            return _json({"version": snapshot.version, "unchanged": True})
        return _json(snapshot.to_json())

    async def _http_federation_index(self, request: Request) -> Response:
        if request.method == "GET":
            users = request.query_params.getlist("user")
            if len(users) > MAX_INDEX_USERS:
                return _error(400, "BAD_REQUEST", f"at most {MAX_INDEX_USERS} users per call")
            try:
                return _json(await self.read_federation_index(users))
            except InvalidGlobalId:
                return _error(400, "BAD_REQUEST", "every `user` must be a User ID")
        body = await request.body()
        if len(body) > MAX_INDEX_BODY:
            return _error(413, "TOO_LARGE", "the body is too large")
        try:
            nonce = verify(self.settings.index_secret, request.headers, body)
        except SignatureRejected as exc:
            log.warning("federation index: refused a call: %s", exc)
            return _error(401, "UNAUTHORIZED", str(exc))
        try:
            message = IndexMessage.from_json(orjson.loads(body))
        except orjson.JSONDecodeError:
            return _error(400, "BAD_REQUEST", "the body is not valid JSON")
        except BadIndexMessage as exc:
            return _error(400, "BAD_REQUEST", str(exc))
        try:
            applied = await self.apply_index_message(message, nonce=nonce)
        except federation_index.ReplayedCall:
            log.warning("federation index: refused a replayed call from %s", message.realm)
            return _error(409, "REPLAY", "this call was received already")
        except UnknownRealm as exc:
            return _error(404, "UNKNOWN_REALM", str(exc))
        except BadIndexMessage as exc:
            return _error(400, "BAD_REQUEST", str(exc))
        return _json({"applied": applied})

    def make_context(self, headers: Mapping[str, str]) -> HubContext:
        viewer_id = resolve_viewer(self.settings, headers, self.token_verifier)
        return HubContext(
            settings=self.settings,
            viewer_id=viewer_id,
            headers=headers,
            sessions=self.sessionmaker,
            loaders=HubLoaders.create(self.sessionmaker, viewer_id),
        )
