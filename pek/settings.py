"""One settings object for every role, read from environment variables and CLI flags.

Every field has an environment variable ``PEK_<FIELD>`` (upper case); a CLI flag given to
``pek <role>`` overrides it. The README lists them all; ``tests/test_settings.py`` checks
that the README and this file agree.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, get_type_hints

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./pek-dev.sqlite3"
#: The development default of ``secret_key``: public, so never good enough for real sign-ins.
DEFAULT_SECRET_KEY = "pek-dev-secret-change-me"


@dataclass(frozen=True)
class Settings:
    """Configuration of one pek process (any role)."""

    #: Development mode: demo sign-in, query plans on request, detailed errors in logs.
    dev: bool = False
    #: Address the server binds to.
    host: str = "127.0.0.1"
    #: Port the server listens on.
    port: int = 8000
    #: SQLAlchemy URL of the hub's database (sqlite+aiosqlite:/// or postgresql+asyncpg://).
    hub_database_url: str = DEFAULT_SQLITE_URL
    #: SQLAlchemy URL of the realm's database.
    realm_database_url: str = DEFAULT_SQLITE_URL
    #: Id of the realm a realm process serves (lower-case letters, digits and dashes).
    realm_id: str = "hub"
    #: Display name of that realm.
    realm_name: str = "Hub"
    #: Realms one realm process hosts from one database (comma-separated ids, rows scoped by
    #: realm_id), each at POST /realms/<id>/graphql; empty: only ``realm_id``.
    realm_ids: str = ""
    #: Redis URL for shared caches; empty means an in-process cache.
    redis_url: str = ""
    #: URL of the hub subgraph's GraphQL endpoint (router); empty: the URL in the supergraph.
    hub_url: str = ""
    #: URL of the realm subgraph's GraphQL endpoint (router); empty: the URL in the supergraph.
    realm_url: str = ""
    #: Path of a supergraph SDL file; empty means compose it from the subgraphs at start-up.
    supergraph: str = ""
    #: Create demo data on first start when the database is empty.
    demo_data: bool = False
    #: Serve GraphiQL at GET /graphql.
    graphiql: bool = True
    #: Allow introspection queries.
    introspection: bool = True
    #: Timeout in seconds of one subgraph fetch.
    subgraph_timeout: float = 10.0
    #: Secret that seals the hub's sign-in transaction cookie and signs the router's dev
    #: sign-in cookie; the hub refuses to start with the default outside dev mode when an
    #: identity provider is configured.
    secret_key: str = DEFAULT_SECRET_KEY
    #: Shared secret of the realm -> hub federation-index calls (HMAC-SHA256); empty: the hub
    #: refuses them and realms do not send them.
    index_secret: str = ""
    #: Realm: the hub's federation-index endpoint; empty: derived from ``hub_url``
    #: (``.../graphql`` -> ``.../internal/federation-index``), or none when that is empty too.
    index_url: str = ""
    #: Python log level.
    log_level: str = "info"
    #: Run database migrations (create the schema) on start-up.
    migrate: bool = True
    #: Router: identical in-flight queries (same document, variables and caller) share one
    #: execution.
    deduplicate: bool = True
    #: Router: identical in-flight subgraph queries (same subgraph, query, variables and
    #: forwarded headers) share one fetch.
    deduplicate_fetches: bool = True
    #: Log every HTTP request (uvicorn's access log); off by default for the router.
    access_log: bool = False
    #: Router: HTTP client for subgraph fetches: "asyncio" (built in, fast) or "httpx".
    subgraph_client: str = "asyncio"
    #: Hub: directory of the token signing keys (one JSON file per key, mode 0600); the first
    #: key is created on start-up. All-in-one processes also verify tokens from it.
    key_dir: str = "./pek-keys"
    #: The ``iss`` of the hub's access tokens.
    token_issuer: str = "urn:pek:hub"
    #: The ``aud`` of the hub's access tokens (router and every subgraph check it).
    token_audience: str = "pek-federation"
    #: Lifetime of an access token in seconds.
    access_token_seconds: int = 600
    #: Lifetime of a refresh token in seconds (rotated on every use).
    refresh_token_seconds: int = 2592000
    #: Router and realms: URL of the hub's JWKS; empty: derived from ``hub_url``
    #: (``.../graphql`` -> ``.../.well-known/jwks.json``), else the key directory in-process.
    jwks_url: str = ""
    #: Seconds a fetched JWKS is cached; a rotated key is published this long before it signs.
    jwks_cache_seconds: float = 300.0
    #: Public origin browsers use (``https://pek.example.org``); the sign-in callback is
    #: ``<public_url>/auth/callback``. Empty: taken from the request.
    public_url: str = ""
    #: OpenID Connect discovery URL of the identity provider; empty: AuthSCH's endpoints.
    oidc_discovery_url: str = ""
    #: Base URL of AuthSCH, the default provider when ``oidc_discovery_url`` is empty: its
    #: endpoints are ``/site/login``, ``/oauth2/token`` and ``/oidc/userinfo`` below it.
    authsch_url: str = "https://auth.sch.bme.hu"
    #: OAuth client id at the identity provider; empty: no provider (dev sign-in only).
    oidc_client_id: str = ""
    #: OAuth client secret at the identity provider (sent with HTTP Basic).
    oidc_client_secret: str = ""
    #: Scopes asked of the identity provider (space-separated).
    oidc_scopes: str = "openid profile email phone"
    #: JSON file of further identity providers, e.g. one per realm (see ``pek.hub.auth.oidc``).
    oidc_providers_file: str = ""
    #: Mark the sign-in cookies ``Secure`` (browsers accept them on http://localhost too).
    cookie_secure: bool = True
    #: Allocations between two young-generation garbage collections (0: Python's default).
    gc_threshold: int = 20000
    #: Router: seconds between two reads of the hub's realm registry (a request naming a realm
    #: the router does not know also triggers a read, at most once a second).
    registry_refresh_seconds: float = 30.0
    #: Router: seconds a federation-index answer (which realms a user is in) stays cached, in
    #: Redis when ``redis_url`` is set, else in memory; 0 turns the cache off.
    federation_index_ttl_seconds: float = 30.0
    #: Router: base URL of the hub's internal endpoints (``/internal/realms``,
    #: ``/internal/federation-index``); empty: the hub's URL without its ``/graphql`` path.
    hub_internal_url: str = ""
    #: Router: deepest field nesting an operation may have (``{ me { name } }`` is 2),
    #: fragments expanded; 0: no limit.
    max_depth: int = 15
    #: Router: most aliased fields an operation may have, fragments expanded; 0: no limit.
    max_aliases: int = 30
    #: Router: most fields at the top level of an operation, fragments expanded; 0: no limit.
    max_root_fields: int = 20
    #: Router: most lexical tokens a GraphQL document may have (the parser stops there);
    #: 0: no limit.
    max_tokens: int = 5000
    #: Router: largest request body in bytes (413 beyond it); 0: no limit.
    max_body_bytes: int = 1048576
    #: Router: "Did you mean ...?" in validation errors: true, false, or auto (shown when
    #: introspection is allowed, which reveals the same names).
    field_suggestions: str = "auto"
    #: Prometheus metrics at ``GET /metrics`` (router, hub and realm processes): request
    #: counts and durations, subgraph fetches, realm outcomes; false: not measured or served.
    metrics: bool = True
    #: Router: automatic persisted queries (Apollo's APQ: a query sent once, then by its
    #: SHA-256 hash), stored in Redis when ``redis_url`` is set and in a bounded in-process
    #: cache in front of it.
    persisted_queries: bool = True
    #: Router: seconds a persisted query stays in Redis after it was sent; 0: no expiry.
    persisted_queries_ttl_seconds: float = 86400.0

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Build settings from ``PEK_*`` variables, then apply non-None ``overrides``."""
        env = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(env_name(f.name))
            if raw is not None:
                values[f.name] = _convert(raw, hints[f.name], f.name)
        for key, value in overrides.items():
            if value is not None:
                values[key] = value
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def env_name(field_name: str) -> str:
    return "PEK_" + field_name.upper()


def _convert(raw: str, kind: Any, name: str) -> Any:
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"{env_name(name)}={raw!r} is not a boolean (use true or false)")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{env_name(name)}={raw!r} is not an integer") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{env_name(name)}={raw!r} is not a number") from None
    return raw


def documented_fields() -> list[tuple[str, str]]:
    """(environment variable, default) for every setting, in declaration order."""
    return [(env_name(f.name), repr(f.default)) for f in fields(Settings)]


