"""Identity providers and the OAuth 2.0 / OpenID Connect client side of sign-in (authlib).

The default provider comes from the settings: AuthSCH when ``PEK_OIDC_DISCOVERY_URL`` is
empty (its fixed endpoints below ``PEK_AUTHSCH_URL``: ``/site/login``, ``/oauth2/token``,
``/oidc/userinfo``; no discovery), else any OpenID Connect provider by its discovery URL; it is
configured at all only when ``PEK_OIDC_CLIENT_ID`` is set. More providers come from the JSON
file ``PEK_OIDC_PROVIDERS_FILE``, for instance one per realm::

    {
      "kir-keycloak": {
        "discovery_url": "https://sso.example.org/realms/kir/.well-known/openid-configuration",
        "client_id": "pek", "client_secret": "...",
        "scopes": "openid profile email",
        "realms": ["kir"]
      }
    }

Instead of ``discovery_url`` a provider may give ``authorize_url``, ``token_url``,
``userinfo_url`` (and ``issuer`` + ``jwks_url`` to check ID tokens); also
``token_endpoint_auth_method`` (``client_secret_basic``, the default, ``client_secret_post`` or
``none``). ``realms`` lists the realms whose sign-in (``/auth/login?realm=kir``) uses this
provider; a realm belongs to one provider at most, and any other realm uses the default. Names
are lower-case (``[a-z0-9._-]``) and must differ from the default's (``authsch`` / ``oidc``). The
file is checked whole when the hub starts: an unreadable or malformed file, an unknown key or a
wrong type stops the start with a :class:`ProvidersFileError` naming the file, the provider and
the problem.

The flow is the authorization-code grant with PKCE (S256), ``state`` and ``nonce``; the client
authenticates with HTTP Basic (``client_secret_basic``) unless configured otherwise. An ID
token, when the provider sends one and publishes its keys, is verified (signature, issuer,
audience, expiry, nonce); the profile claims come from it and from the userinfo endpoint
(Bearer). Identities are keyed by (provider name, ``sub``): the same ``sub`` at two providers
is two identities, hence two users.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import authlib.deprecate
import httpx
import jwt
from authlib.common.security import generate_token

from pek.settings import Settings

with warnings.catch_warnings():
    # authlib 1.9 prefers the httpx2 fork; the project standardises on httpx, which authlib
    # still supports fully (the warning is about a future release). authlib.deprecate is
    # imported first because it installs an "always" filter of its own.
    warnings.simplefilter("ignore", authlib.deprecate.AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

log = logging.getLogger("pek.auth")

AUTHSCH = "authsch"
#: AuthSCH's endpoints below its base URL (``PEK_AUTHSCH_URL``); it has no discovery document.
AUTHSCH_PATHS = {
    "authorization_endpoint": "/site/login",
    "token_endpoint": "/oauth2/token",
    "userinfo_endpoint": "/oidc/userinfo",
}
#: ID-token algorithms accepted when the provider does not list its own (never HS*: that
#: would make the client secret a signing key).
DEFAULT_ID_TOKEN_ALGORITHMS = ("RS256", "ES256", "PS256", "EdDSA")
#: How the client may authenticate at the token endpoint.
TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")
_PROVIDER_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,99}")
#: Keys of one entry of the providers file.
_FILE_KEYS = frozenset({
    "discovery_url", "authorize_url", "token_url", "userinfo_url", "issuer", "jwks_url",
    "client_id", "client_secret", "scopes", "realms", "token_endpoint_auth_method",
})


def authsch_endpoints(base_url: str) -> dict[str, str]:
    """AuthSCH's authorization, token and userinfo endpoints below ``base_url``."""
    base = base_url.rstrip("/")
    return {key: base + path for key, path in AUTHSCH_PATHS.items()}


class SignInError(Exception):
    """Sign-in failed for a reason the user can be told (and a status to answer with)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ProvidersFileError(ValueError):
    """``PEK_OIDC_PROVIDERS_FILE`` cannot be used; the message says where and why."""


@dataclass(frozen=True)
class ProviderConfig:
    """One identity provider as configured."""

    name: str
    client_id: str
    client_secret: str
    scopes: str = "openid profile email"
    discovery_url: str = ""
    #: Endpoints given directly (used when there is no discovery URL).
    endpoints: Mapping[str, str] = field(default_factory=dict)
    realms: tuple[str, ...] = ()
    token_endpoint_auth_method: str = "client_secret_basic"
    #: The provider of the settings (``PEK_OIDC_*``): its subjects are also the users'
    #: ``subject`` (AuthSCH's UUID), and it serves every realm no other provider claims.
    default: bool = False


@dataclass
class ProviderMetadata:
    """What the flow needs to know of a provider (from discovery or configuration)."""

    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str | None
    issuer: str | None
    jwks_uri: str | None
    id_token_algorithms: tuple[str, ...]


@dataclass(frozen=True)
class LoginRequest:
    """Where to send the browser, and what to remember until the callback."""

    url: str
    state: str
    nonce: str
    code_verifier: str


def providers_from_settings(settings: Settings) -> dict[str, ProviderConfig]:
    """Every configured provider by name (empty when none is: dev sign-in only).

    Raises :class:`ProvidersFileError` when ``PEK_OIDC_PROVIDERS_FILE`` is unreadable or
    malformed: the hub does not start with half of its sign-in configuration.
    """
    providers: dict[str, ProviderConfig] = {}
    if settings.oidc_client_id:
        name = "oidc" if settings.oidc_discovery_url else AUTHSCH
        providers[name] = ProviderConfig(
            name=name,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            scopes=settings.oidc_scopes,
            discovery_url=settings.oidc_discovery_url,
            endpoints={} if settings.oidc_discovery_url
            else authsch_endpoints(settings.authsch_url),
            default=True,
        )
    if settings.oidc_providers_file:
        path = settings.oidc_providers_file
        for name, config in read_providers_file(Path(path)).items():
            if name in providers:
                raise ProvidersFileError(
                    f"PEK_OIDC_PROVIDERS_FILE={path}: provider {name!r}: the name of the default "
                    "provider (PEK_OIDC_*); choose another"
                )
            providers[name] = config
    return providers


def read_providers_file(path: Path) -> dict[str, ProviderConfig]:
    """The providers of a providers file (format in the module docstring), checked whole."""
    where = f"PEK_OIDC_PROVIDERS_FILE={path}"
    try:
        document = json.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise ProvidersFileError(f"{where}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ProvidersFileError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise ProvidersFileError(
            f"{where}: expected a JSON object of providers by name, got {type(document).__name__}"
        )
    providers: dict[str, ProviderConfig] = {}
    realm_owner: dict[str, str] = {}
    for name, entry in document.items():
        provider = _provider_entry(where, name, entry)
        for realm in provider.realms:
            if realm in realm_owner:
                raise ProvidersFileError(
                    f"{where}: realm {realm!r} is given to both {realm_owner[realm]!r} and "
                    f"{name!r}"
                )
            realm_owner[realm] = name
        providers[name] = provider
    return providers


def _provider_entry(where: str, name: str, entry: object) -> ProviderConfig:
    def bad(problem: str) -> ProvidersFileError:
        return ProvidersFileError(f"{where}: provider {name!r}: {problem}")

    if not _PROVIDER_NAME.fullmatch(name):
        raise bad("a name is 1-100 lower-case letters, digits, '.', '_' or '-'")
    if not isinstance(entry, dict):
        raise bad("expected a JSON object")
    unknown = sorted(set(entry) - _FILE_KEYS)
    if unknown:
        raise bad(f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_FILE_KEYS))})")
    strings: dict[str, str] = {}
    for key in _FILE_KEYS - {"realms", "scopes"}:
        value = entry.get(key, "")
        if not isinstance(value, str):
            raise bad(f"{key} must be a string")
        strings[key] = value.strip()
    for key in ("discovery_url", "authorize_url", "token_url", "userinfo_url", "jwks_url"):
        if strings[key] and urlsplit(strings[key]).scheme not in ("http", "https"):
            raise bad(f"{key} must be an http(s) URL, not {strings[key]!r}")
    if not strings["client_id"]:
        raise bad("needs a client_id")
    if not strings["discovery_url"] and not (strings["authorize_url"] and strings["token_url"]):
        raise bad("needs a discovery_url, or an authorize_url and a token_url")
    method = strings["token_endpoint_auth_method"] or "client_secret_basic"
    if method not in TOKEN_ENDPOINT_AUTH_METHODS:
        raise bad(f"token_endpoint_auth_method must be one of "
                  f"{', '.join(TOKEN_ENDPOINT_AUTH_METHODS)}")
    scopes = entry.get("scopes", "openid profile email")
    if isinstance(scopes, list) and all(isinstance(s, str) for s in scopes):
        scopes = " ".join(scopes)
    if not isinstance(scopes, str) or "openid" not in scopes.split():
        raise bad("scopes must be a string (or a list of strings) that includes openid")
    realms = entry.get("realms", [])
    if not isinstance(realms, list) or not all(isinstance(r, str) and r for r in realms):
        raise bad('realms must be a list of realm ids, e.g. ["kir"]')
    endpoints = {
        key: strings[source]
        for key, source in (
            ("authorization_endpoint", "authorize_url"),
            ("token_endpoint", "token_url"),
            ("userinfo_endpoint", "userinfo_url"),
            ("issuer", "issuer"),
            ("jwks_uri", "jwks_url"),
        )
        if strings[source]
    }
    return ProviderConfig(
        name=name,
        client_id=strings["client_id"],
        client_secret=strings["client_secret"],
        scopes=" ".join(scopes.split()),
        discovery_url=strings["discovery_url"],
        endpoints=endpoints,
        realms=tuple(dict.fromkeys(realms)),
        token_endpoint_auth_method=method,
    )


class OidcClient:
    """The client side of sign-in for every configured provider.

    ``http`` is used for discovery, JWKS and userinfo; authlib's client does the
    authorization URL (PKCE, state, nonce) and the code exchange.
    """

    def __init__(self, providers: Mapping[str, ProviderConfig], timeout: float = 10.0) -> None:
        self.providers = dict(providers)
        self.timeout = timeout
        self.http = httpx.AsyncClient(timeout=timeout)
        self._metadata: dict[str, ProviderMetadata] = {}
        self._jwks: dict[str, jwt.PyJWKSet] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    def provider_for(self, name: str | None, realm: str | None) -> ProviderConfig:
        """The provider asked for by name, else the one of ``realm``, else the default."""
        if not self.providers:
            raise SignInError(
                "No identity provider is configured (set PEK_OIDC_CLIENT_ID); in development "
                "mode use the dev sign-in at /dev/sign-in",
                404,
            )
        if name:
            provider = self.providers.get(name)
            if provider is None:
                raise SignInError(f"Unknown identity provider {name!r}")
            return provider
        if realm:
            for provider in self.providers.values():
                if realm in provider.realms:
                    return provider
        for provider in self.providers.values():
            if provider.default:
                return provider
        # No PEK_OIDC_* provider: a file provider that serves no realm in particular, else the
        # only one there is.
        unbound = [p for p in self.providers.values() if not p.realms]
        if len(unbound) == 1 or len(self.providers) == 1:
            return (unbound or list(self.providers.values()))[0]
        raise SignInError(
            "Choose an identity provider: /auth/login?realm=<realm> or ?provider=<name> "
            "(GET /auth/providers lists them)"
        )

    async def metadata(self, provider: ProviderConfig) -> ProviderMetadata:
        cached = self._metadata.get(provider.name)
        if cached is not None:
            return cached
        document: dict[str, Any] = dict(provider.endpoints)
        if provider.discovery_url:
            try:
                response = await self.http.get(provider.discovery_url)
                response.raise_for_status()
                discovered = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning("discovery of %s failed: %s", provider.name, exc)
                raise SignInError(
                    f"The identity provider {provider.name!r} is not reachable", 502
                ) from None
            if isinstance(discovered, dict):
                document = {**discovered, **document}
        try:
            metadata = ProviderMetadata(
                authorization_endpoint=str(document["authorization_endpoint"]),
                token_endpoint=str(document["token_endpoint"]),
                userinfo_endpoint=document.get("userinfo_endpoint"),
                issuer=document.get("issuer"),
                jwks_uri=document.get("jwks_uri"),
                id_token_algorithms=tuple(
                    a for a in document.get("id_token_signing_alg_values_supported", [])
                    if isinstance(a, str) and not a.startswith("HS") and a != "none"
                ) or DEFAULT_ID_TOKEN_ALGORITHMS,
            )
        except KeyError as exc:
            raise SignInError(
                f"The identity provider {provider.name!r} lacks {exc.args[0]}", 502
            ) from None
        self._metadata[provider.name] = metadata
        return metadata

    def _client(self, provider: ProviderConfig, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            token_endpoint_auth_method=provider.token_endpoint_auth_method,
            scope=provider.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self.timeout,
        )

    async def login(self, provider: ProviderConfig, redirect_uri: str) -> LoginRequest:
        """The authorization URL of a new sign-in, with fresh state, nonce and PKCE verifier."""
        metadata = await self.metadata(provider)
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        async with self._client(provider, redirect_uri) as client:
            url, _ = client.create_authorization_url(
                metadata.authorization_endpoint, state=state, code_verifier=verifier, nonce=nonce
            )
        return LoginRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)

    async def finish(
        self,
        provider: ProviderConfig,
        redirect_uri: str,
        code: str,
        code_verifier: str,
        nonce: str,
    ) -> dict[str, Any]:
        """Exchange ``code`` and return the user's claims (verified ID token + userinfo)."""
        metadata = await self.metadata(provider)
        async with self._client(provider, redirect_uri) as client:
            try:
                token = await client.fetch_token(
                    metadata.token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                )
            except (OAuthError, httpx.HTTPError, ValueError) as exc:
                log.warning("code exchange with %s failed: %s", provider.name, exc)
                raise SignInError("The identity provider refused the sign-in", 401) from None
        claims: dict[str, Any] = {}
        id_token = token.get("id_token")
        if isinstance(id_token, str) and metadata.jwks_uri:
            claims.update(await self._id_token_claims(provider, metadata, id_token, nonce))
        access_token = token.get("access_token")
        if metadata.userinfo_endpoint and isinstance(access_token, str):
            userinfo = await self._userinfo(metadata.userinfo_endpoint, access_token)
            if "sub" in claims and userinfo.get("sub") != claims["sub"]:
                # OIDC Core 5.3.2: userinfo of another subject must not be used.
                raise SignInError("The identity provider answered for another user", 401)
            claims = {**userinfo, **claims}
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise SignInError("The identity provider did not say who signed in", 401)
        return claims

    async def _id_token_claims(
        self, provider: ProviderConfig, metadata: ProviderMetadata, id_token: str, nonce: str
    ) -> dict[str, Any]:
        assert metadata.jwks_uri is not None
        try:
            header = jwt.get_unverified_header(id_token)
            key = (await self._jwks_of(provider.name, metadata.jwks_uri, refresh=False)).get(
                header.get("kid")
            )
            if key is None:
                key = (await self._jwks_of(provider.name, metadata.jwks_uri, refresh=True)).get(
                    header.get("kid")
                )
            if key is None:
                raise SignInError("The identity provider's ID token has an unknown key", 401)
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key.key,
                algorithms=list(metadata.id_token_algorithms),
                audience=provider.client_id,
                issuer=metadata.issuer,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
                leeway=30,
            )
        except jwt.PyJWTError as exc:
            raise SignInError(f"The identity provider's ID token is invalid: {exc}", 401) from None
        if claims.get("nonce") != nonce:
            raise SignInError("The identity provider's ID token has the wrong nonce", 401)
        return claims

    async def _jwks_of(self, name: str, url: str, *, refresh: bool) -> _KeyLookup:
        if refresh or name not in self._jwks:
            try:
                response = await self.http.get(url)
                response.raise_for_status()
                self._jwks[name] = jwt.PyJWKSet.from_dict(response.json())
            except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                log.warning("fetching the keys of %s failed: %s", name, exc)
                raise SignInError(f"The identity provider {name!r} is not reachable", 502) \
                    from None
        return _KeyLookup(self._jwks[name])

    async def _userinfo(self, url: str, access_token: str) -> dict[str, Any]:
        try:
            response = await self.http.get(url, headers={"Authorization": f"Bearer {access_token}"})
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("userinfo at %s failed: %s", url, exc)
            raise SignInError("The identity provider did not give the user's profile", 502) \
                from None
        if not isinstance(document, dict):
            raise SignInError("The identity provider's profile is not a JSON object", 502)
        return document


class _KeyLookup:
    def __init__(self, keys: jwt.PyJWKSet) -> None:
        self.keys = keys

    def get(self, kid: object) -> Any:
        for key in self.keys.keys:
            if kid is None or key.key_id == kid:
                return key
        return None
