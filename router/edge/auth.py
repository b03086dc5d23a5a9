"""Authentication at the edge: the first of the two checks of every hub token.

The caller's token comes from ``Authorization: Bearer`` (API clients) or the ``pek_access``
cookie (browsers signed in through ``/auth/login``). The router verifies it like any
subgraph would (:class:`pek.schema.tokens.TokenVerifier`) and forwards *the same token* to the
subgraphs, which verify it again: the router holds no signing key, so a compromised router
cannot mint identities, and a subgraph reached directly trusts nothing but the hub's
signature. (A derived per-subgraph token would need a second signer; the token's short
lifetime already bounds what a leaked forwarded token is worth.)

A token that is present but invalid (forged, expired, another issuer's...) is answered with
HTTP 401, ``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750 section 3.1) and a
GraphQL error with ``extensions.code = "UNAUTHENTICATED"``: the client learns it must refresh
or sign in again, rather than silently seeing anonymous data. No token at all is an
anonymous caller.

In dev mode only, a dev sign-in (the ``pek_dev_user`` cookie, or an explicit
``x-pek-dev-user`` header from GraphiQL) is turned into a real token minted by the hub
(``POST /auth/dev/token``), so dev requests take the very same validation path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from pek.router.edge.errors import EdgeError, error_body
from pek.schema.tokens import (
    ACCESS_COOKIE,
    DirectoryKeySource,
    InvalidToken,
    KeyDirectory,
    TokenVerifier,
    bearer_token,
    jwks_url_for,
    verifier_for,
)
from pek.settings import Settings

log = logging.getLogger("pek.router.auth")

DEV_USER_HEADER = "x-pek-dev-user"
DEV_TOKEN_PATH = "/auth/dev/token"
UNAUTHENTICATED = "UNAUTHENTICATED"
#: A cached dev token is renewed when it has less than this many seconds left.
_DEV_TOKEN_MARGIN = 60

#: Mints a dev token for a User id (dev mode only).
DevTokenMinter = Callable[[str], Awaitable[str]]


class Unauthenticated(EdgeError):
    """A token was presented and refused: 401 with an ``UNAUTHENTICATED`` GraphQL error."""

    def __init__(self, message: str) -> None:
        super().__init__(
            401,
            message,
            headers={"www-authenticate": 'Bearer error="invalid_token"'},
        )

    def response(self, media_type: str = "application/json") -> Response:
        return Response(
            orjson.dumps(error_body(self.message, code=UNAUTHENTICATED)),
            status_code=self.status,
            media_type=media_type,
            headers=self.headers,
        )


def hub_auth_base(settings: Settings) -> str:
    """The hub's base URL for ``/auth/*`` (federated): ``PEK_HUB_INTERNAL_URL``, else the
    origin of ``PEK_HUB_URL``; empty when neither is an HTTP URL (all-in-one)."""
    if settings.hub_internal_url:
        return settings.hub_internal_url.rstrip("/")
    url = httpx.URL(settings.hub_url) if settings.hub_url else None
    if url is None or url.scheme not in ("http", "https"):
        return ""
    return f"{url.scheme}://{url.netloc.decode()}"


def hub_client(settings: Settings, hub_app: ASGIApp | None = None) -> httpx.AsyncClient | None:
    """An HTTP client whose base is the hub: in-process over ``hub_app`` (all-in-one) or over
    the network; None when the hub is nowhere to be reached."""
    if hub_app is not None:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=hub_app), base_url="http://hub.in-process",
            timeout=settings.subgraph_timeout,
        )
    base = hub_auth_base(settings)
    if not base:
        return None
    return httpx.AsyncClient(base_url=base, timeout=settings.subgraph_timeout)


def hub_dev_tokens(client: httpx.AsyncClient) -> DevTokenMinter:
    """Dev tokens from the hub's ``POST /auth/dev/token`` (it checks the user exists)."""

    async def mint(user: str) -> str:
        try:
            response = await client.post(DEV_TOKEN_PATH, json={"user": user})
        except httpx.HTTPError as exc:
            log.warning("dev sign-in: the hub is unreachable: %s", exc)
            raise EdgeError(502, "Dev sign-in: the hub does not answer") from None
        if response.status_code != 200:
            try:
                message = response.json()["errors"][0]["message"]
            except (ValueError, KeyError, IndexError, TypeError):
                message = f"the hub answered {response.status_code}"
            raise EdgeError(400 if response.status_code < 500 else 502,
                            f"Dev sign-in failed: {message}")
        token = response.json().get("access_token")
        if not isinstance(token, str):
            raise EdgeError(502, "Dev sign-in: the hub gave no token")
        return token

    return mint


class EdgeAuth:
    """Finds, verifies and forwards the caller's token (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        verifier: TokenVerifier,
        *,
        dev_tokens: DevTokenMinter | None = None,
        hub: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.verifier = verifier
        #: The hub's base (in-process or HTTP): the auth pass-through and dev tokens use it.
        self.hub = hub
        if dev_tokens is None and hub is not None:
            dev_tokens = hub_dev_tokens(hub)
        self.dev_tokens = dev_tokens
        self._dev_cache: dict[str, tuple[str, int]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, hub_app: ASGIApp | None = None) -> EdgeAuth:
        """All-in-one (``hub_app`` given, or no hub URL): keys from the key directory, the hub
        in-process. Federated: the JWKS and ``/auth/*`` of the hub at ``PEK_HUB_URL``."""
        if hub_app is not None and not jwks_url_for(settings):
            verifier = TokenVerifier(
                DirectoryKeySource(KeyDirectory(settings.key_dir)),
                settings.token_issuer,
                settings.token_audience,
            )
        else:
            verifier = verifier_for(settings)
        return cls(settings, verifier, hub=hub_client(settings, hub_app))

    async def aclose(self) -> None:
        if self.hub is not None:
            await self.hub.aclose()

    async def verify(self, token: str) -> dict[str, Any]:
        """The claims of ``token``, or :class:`Unauthenticated`."""
        try:
            claims = await self.verifier.averify(token)
        except InvalidToken as exc:
            # the decoder's details stay in the log; the client gets a plain reason
            log.info("refused a token at the edge: %s", exc.detail)
            raise Unauthenticated(
                f"{exc}: sign in again or refresh it (POST /auth/refresh)."
            ) from None
        return dict(claims.claims)

    async def token_for(self, request: Request, dev_user: str | None = None) -> str | None:
        """The verified token to forward for ``request``, or None for an anonymous caller.

        ``dev_user`` is the dev sign-in cookie's user (dev mode only).
        """
        token = bearer_token(request.headers)
        if token is None and request.headers.get("authorization", "").strip():
            raise Unauthenticated("Use `Authorization: Bearer <access token>`")
        if token is None:
            token = request.cookies.get(ACCESS_COOKIE) or None
        if token is None and self.settings.dev:
            user = request.headers.get(DEV_USER_HEADER, "").strip() or dev_user
            if user:
                token = await self.dev_token(user)
        if token is None:
            return None
        await self.verify(token)
        return token

    async def dev_token(self, user: str) -> str:
        """A hub token for ``user`` (dev mode only), cached until shortly before it expires."""
        if not self.settings.dev:
            raise EdgeError(404, "Dev sign-in is only available in development mode")
        if self.dev_tokens is None:
            raise EdgeError(503, "Dev sign-in: no hub is configured to mint tokens")
        cached = self._dev_cache.get(user)
        now = int(time.time())
        if cached is not None and cached[1] - now > _DEV_TOKEN_MARGIN:
            return cached[0]
        token = await self.dev_tokens(user)
        claims = await self.verify(token)
        self._dev_cache[user] = (token, int(claims["exp"]))
        return token
