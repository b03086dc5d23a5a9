"""Identity providers and the OAuth 2.0 / OpenID Connect client side of sign-in (authlib).

The default provider comes from the settings: AuthSCH's endpoints when
``PEK_OIDC_DISCOVERY_URL`` is empty, else any OpenID Connect provider by its discovery URL;
it is configured at all only when ``PEK_OIDC_CLIENT_ID`` is set. More providers come from
the JSON file ``PEK_OIDC_PROVIDERS_FILE``, for instance one per realm::

    {
      "kir-keycloak": {
        "discovery_url": "https://sso.example.org/realms/kir/.well-known/openid-configuration",
        "client_id": "pek", "client_secret": "...",
        "scopes": "openid profile email",
        "realms": ["kir"]
      }
    }

Instead of ``discovery_url`` a provider may give ``authorize_url``, ``token_url``,
``userinfo_url`` (and ``issuer`` + ``jwks_url`` to check ID tokens). ``realms`` lists the realms
whose sign-in (``/auth/login?realm=kir``) uses this provider; any other realm uses the default.

The flow is the authorization-code grant with PKCE (S256), ``state`` and ``nonce``; the client
authenticates with HTTP Basic (``client_secret_basic``). An ID token, when the provider sends
one and publishes its keys, is verified (signature, issuer, audience, expiry, nonce); the
profile claims come from it and from the userinfo endpoint.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
AUTHSCH_ENDPOINTS = {
    "authorization_endpoint": "https://auth.sch.bme.hu/site/login",
    "token_endpoint": "https://auth.sch.bme.hu/oauth2/token",
    "userinfo_endpoint": "https://auth.sch.bme.hu/oidc/userinfo",
}
#: ID-token algorithms accepted when the provider does not list its own (never HS*: that
#: would make the client secret a signing key).
DEFAULT_ID_TOKEN_ALGORITHMS = ("RS256", "ES256", "PS256", "EdDSA")


class SignInError(Exception):
    """Sign-in failed for a reason the user can be told (and a status to answer with)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


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
    """Every configured provider by name (empty when none is: dev sign-in only)."""
    providers: dict[str, ProviderConfig] = {}
    if settings.oidc_client_id:
        name = "oidc" if settings.oidc_discovery_url else AUTHSCH
        providers[name] = ProviderConfig(
            name=name,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            scopes=settings.oidc_scopes,
            discovery_url=settings.oidc_discovery_url,
            endpoints={} if settings.oidc_discovery_url else AUTHSCH_ENDPOINTS,
        )
    if settings.oidc_providers_file:
        for name, config in _read_providers_file(Path(settings.oidc_providers_file)).items():
            providers[name] = config
    return providers


def _read_providers_file(path: Path) -> dict[str, ProviderConfig]:
    try:
        document = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"PEK_OIDC_PROVIDERS_FILE={path}: {exc}") from None
    if not isinstance(document, dict):
        raise ValueError(f"PEK_OIDC_PROVIDERS_FILE={path}: expected an object of providers")
    providers = {}
    for name, entry in document.items():
        if not isinstance(entry, dict) or not entry.get("client_id"):
            raise ValueError(f"PEK_OIDC_PROVIDERS_FILE: provider {name!r} needs a client_id")
        endpoints = {
            key: str(entry[source])
            for key, source in (
                ("authorization_endpoint", "authorize_url"),
                ("token_endpoint", "token_url"),
                ("userinfo_endpoint", "userinfo_url"),
                ("issuer", "issuer"),
                ("jwks_uri", "jwks_url"),
            )
            if entry.get(source)
        }
        if not entry.get("discovery_url") and not (
            "authorization_endpoint" in endpoints and "token_endpoint" in endpoints
        ):
            raise ValueError(
                f"PEK_OIDC_PROVIDERS_FILE: provider {name!r} needs a discovery_url, or an "
                "authorize_url and a token_url"
            )
        providers[name] = ProviderConfig(
            name=name,
            client_id=str(entry["client_id"]),
            client_secret=str(entry.get("client_secret", "")),
            scopes=str(entry.get("scopes", "openid profile email")),
            discovery_url=str(entry.get("discovery_url", "")),
            endpoints=endpoints,
            realms=tuple(str(r) for r in entry.get("realms", [])),
            token_endpoint_auth_method=str(
                entry.get("token_endpoint_auth_method", "client_secret_basic")
            ),
        )
    return providers


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
            if not provider.realms:
                return provider
        return next(iter(self.providers.values()))

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
