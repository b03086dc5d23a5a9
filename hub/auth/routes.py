"""The hub's sign-in routes (mounted on the hub's ASGI app, passed through by the router).

``GET /auth/login?provider=&realm=&return_to=&response=json``
    Starts the authorization-code flow: remembers state, nonce, PKCE verifier and where to go
    back in a short-lived signed cookie (``pek_auth_tx``, path ``/auth``) and redirects to the
    provider: the one named, else the one configured for ``realm``, else the default.
``GET /auth/callback?code=&state=``
    Checks the state, exchanges the code, upserts the user from the claims, issues an access
    token (JWT) and a refresh token. Browsers get them as httpOnly, Secure, SameSite=Lax cookies
    and a redirect to ``return_to``; with ``response=json`` at login (or ``Accept:
    application/json`` here) the answer is the tokens as JSON, for API clients.
``POST /auth/refresh``
    Rotates the refresh token (cookie, or JSON ``{"refresh_token": ...}``) for a new pair.
``POST /auth/logout``
    Revokes the refresh token's family and clears the cookies.
``GET /auth/providers``
    The configured providers: name, whether it is the default, its realms, its login URL.
``POST /auth/dev/token`` (dev mode only)
    ``{"user": "<User id>"}`` -> an access token for that user: what the dev sign-in uses.
``GET /.well-known/jwks.json``
    The public keys of the hub's tokens.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from pek.hub import models
from pek.hub.auth.oidc import (
    OidcClient,
    ProvidersFileError,
    SignInError,
    providers_from_settings,
)
from pek.hub.auth.sessions import InvalidRefreshToken, RefreshTokens
from pek.hub.auth.users import upsert_user
from pek.schema import ids
from pek.schema.tokens import (
    ACCESS_COOKIE,
    JWKS_PATH,
    DirectoryKeySource,
    KeyDirectory,
    TokenSigner,
    TokenVerifier,
)
from pek.settings import Settings

log = logging.getLogger("pek.auth")

REFRESH_COOKIE = "pek_refresh"
TRANSACTION_COOKIE = "pek_auth_tx"
#: The browser has this long to come back from the provider.
TRANSACTION_SECONDS = 600
AUTH_PATH = "/auth"
_MAX_BODY = 8192
# Distinguishes this MAC from any other use of the secret key.
_MAC_LABEL = b"pek_auth_tx\x00"


def _json(payload: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json",
                    headers={"cache-control": "no-store"})


def _error(message: str, status: int, code: str = "BAD_REQUEST") -> Response:
    return _json({"errors": [{"message": message, "extensions": {"code": code}}]}, status)


def safe_return_to(value: str | None) -> str:
    """A same-origin path to go back to; anything else (an open redirect) becomes ``/``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(c) < 0x20 for c in value):
        return "/"
    return value


@dataclass(frozen=True)
class Transaction:
    """What the hub remembers between ``/auth/login`` and ``/auth/callback``."""

    provider: str
    state: str
    nonce: str
    code_verifier: str
    return_to: str
    json: bool
    expires_at: int

    def seal(self, secret: str) -> str:
        body = base64.urlsafe_b64encode(orjson.dumps(self.__dict__)).rstrip(b"=")
        mac = hmac.new(secret.encode(), _MAC_LABEL + body, hashlib.sha256).hexdigest()
        return body.decode() + "." + mac

    @classmethod
    def unseal(cls, value: str, secret: str) -> Transaction | None:
        body, dot, mac = value.partition(".")
        if not dot or len(value) > 4096:
            return None
        expected = hmac.new(secret.encode(), _MAC_LABEL + body.encode(), hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), mac):
            return None
        try:
            data = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            transaction = cls(**data)
        except (binascii.Error, ValueError, TypeError):
            return None
        return transaction if transaction.expires_at > time.time() else None


class HubAuth:
    """Sign-in, tokens and sign-out of the hub: see the module docstring for the routes."""

    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions
        self.keys = KeyDirectory(settings.key_dir)
        self.signer = TokenSigner(
            self.keys, settings.token_issuer, settings.token_audience,
            settings.access_token_seconds,
        )
        #: The hub's own verifier reads its key directory: it never asks itself over HTTP.
        self.verifier = TokenVerifier(
            DirectoryKeySource(self.keys), settings.token_issuer, settings.token_audience
        )
        self.refresh_tokens = RefreshTokens(sessions, settings.refresh_token_seconds)
        try:
            providers = providers_from_settings(settings)
        except ProvidersFileError as exc:
            # One clear line before the server's traceback: the hub does not start.
            log.error("the hub cannot start: %s", exc)
            raise
        self.oidc = OidcClient(providers)

    def start(self) -> None:
        """Make sure a signing key exists before the first request."""
        self.keys.ensure_active()

    async def aclose(self) -> None:
        await self.oidc.aclose()

    def routes(self) -> list[Route]:
        return self.route_table(lambda: self)

    @staticmethod
    def route_table(current: Callable[[], HubAuth]) -> list[Route]:
        """The routes, each calling ``current()``'s handler: an app can be built before the
        :class:`HubAuth` exists (it is made when the hub starts)."""

        def endpoint(name: str) -> Callable[[Request], Awaitable[Response]]:
            async def handle(request: Request) -> Response:
                handler: Callable[[Request], Awaitable[Response]] = getattr(current(), name)
                return await handler(request)

            return handle

        return [
            Route(path, endpoint(name), methods=[method])
            for path, name, method in (
                (f"{AUTH_PATH}/login", "login", "GET"),
                (f"{AUTH_PATH}/callback", "callback", "GET"),
                (f"{AUTH_PATH}/refresh", "refresh", "POST"),
                (f"{AUTH_PATH}/logout", "logout", "POST"),
                (f"{AUTH_PATH}/providers", "provider_list", "GET"),
                (f"{AUTH_PATH}/dev/token", "dev_token", "POST"),
                (JWKS_PATH, "jwks", "GET"),
            )
        ]

    # -- helpers -------------------------------------------------------------------------------

    def public_origin(self, request: Request) -> str:
        """The origin browsers see: the setting, else what the router forwarded, else ours."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        proto = request.headers.get("x-forwarded-proto")
        host = request.headers.get("x-forwarded-host")
        if proto in ("http", "https") and host:
            return f"{proto}://{host}"
        return f"{request.url.scheme}://{request.url.netloc}"

    def redirect_uri(self, request: Request) -> str:
        return self.public_origin(request) + f"{AUTH_PATH}/callback"

    def _set_cookie(self, response: Response, name: str, value: str, max_age: int,
                    path: str) -> None:
        response.set_cookie(name, value, max_age=max_age, path=path, httponly=True,
                            secure=self.settings.cookie_secure, samesite="lax")

    def _clear_cookie(self, response: Response, name: str, path: str) -> None:
        response.delete_cookie(name, path=path, httponly=True,
                               secure=self.settings.cookie_secure, samesite="lax")

    async def issue(self, user_id: int, family: str | None = None,
                    refresh_token: str | None = None) -> dict[str, Any]:
        """A token answer for ``user_id`` (RFC 6749 section 5.1 names)."""
        access_token, expires_at = self.signer.mint(user_id)
        if refresh_token is None:
            refresh_token = await self.refresh_tokens.issue(user_id, family)
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": max(0, expires_at - int(time.time())),
            "refresh_token": refresh_token,
        }

    def _with_cookies(self, response: Response, tokens: dict[str, Any]) -> Response:
        self._set_cookie(response, ACCESS_COOKIE, tokens["access_token"],
                         self.settings.access_token_seconds, "/")
        self._set_cookie(response, REFRESH_COOKIE, tokens["refresh_token"],
                         self.settings.refresh_token_seconds, AUTH_PATH)
        return response

    @staticmethod
    def _cross_site(request: Request) -> bool:
        # SameSite=Lax already keeps the cookies off cross-site POSTs; this refuses them
        # outright, so that a cross-site form cannot sign anyone out either.
        if request.headers.get("sec-fetch-site") == "cross-site":
            return True
        origin = request.headers.get("origin")
        if not origin or origin == "null":
            return False
        host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
        return urlsplit(origin).netloc != host

    async def _json_body(self, request: Request) -> dict[str, Any]:
        if "json" not in request.headers.get("content-type", ""):
            return {}
        body = await request.body()
        if len(body) > _MAX_BODY:
            raise SignInError("The request body is too large", 413)
        try:
            payload = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            raise SignInError("The request body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise SignInError("The request body must be a JSON object")
        return payload

    # -- routes --------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        params = request.query_params
        try:
            provider = self.oidc.provider_for(params.get("provider"), params.get("realm"))
            login = await self.oidc.login(provider, self.redirect_uri(request))
        except SignInError as exc:
            return _error(exc.message, exc.status)
        transaction = Transaction(
            provider=provider.name,
            state=login.state,
            nonce=login.nonce,
            code_verifier=login.code_verifier,
            return_to=safe_return_to(params.get("return_to")),
            json=params.get("response") == "json",
            expires_at=int(time.time()) + TRANSACTION_SECONDS,
        )
        response = RedirectResponse(login.url, status_code=302)
        self._set_cookie(response, TRANSACTION_COOKIE, transaction.seal(self.settings.secret_key),
                         TRANSACTION_SECONDS, AUTH_PATH)
        return response

    async def callback(self, request: Request) -> Response:
        params = request.query_params
        sealed = request.cookies.get(TRANSACTION_COOKIE, "")
        transaction = Transaction.unseal(sealed, self.settings.secret_key) if sealed else None
        if transaction is None:
            return _error("The sign-in expired or was not started here: start again at "
                          f"{AUTH_PATH}/login", 400)
        state = params.get("state", "")
        if not hmac.compare_digest(state.encode(), transaction.state.encode()):
            return _error("The sign-in state does not match: start again", 400)
        if params.get("error"):
            description = params.get("error_description") or params["error"]
            return _error(f"The identity provider refused the sign-in: {description[:200]}", 401,
                          "UNAUTHENTICATED")
        code = params.get("code")
        if not code:
            return _error("The callback lacks the authorization code", 400)
        try:
            provider = self.oidc.provider_for(transaction.provider, None)
            claims = await self.oidc.finish(
                provider, self.redirect_uri(request), code, transaction.code_verifier,
                transaction.nonce,
            )
        except SignInError as exc:
            return _error(exc.message, exc.status, "UNAUTHENTICATED")
        async with self.sessions.begin() as session:
            user = await upsert_user(
                session, provider.name, claims, default_provider=provider.default
            )
            user_id = user.id
        log.info("user %s signed in through %s", user_id, provider.name)
        tokens = await self.issue(user_id)
        wants_json = transaction.json or "application/json" in request.headers.get("accept", "")
        response: Response = (
            _json(tokens) if wants_json
            else RedirectResponse(transaction.return_to, status_code=303)
        )
        self._clear_cookie(response, TRANSACTION_COOKIE, AUTH_PATH)
        return response if wants_json else self._with_cookies(response, tokens)

    async def refresh(self, request: Request) -> Response:
        if self._cross_site(request):
            return _error("Cross-site refresh refused", 403, "FORBIDDEN")
        try:
            body = await self._json_body(request)
        except SignInError as exc:
            return _error(exc.message, exc.status)
        from_body = body.get("refresh_token")
        token = from_body if isinstance(from_body, str) else request.cookies.get(REFRESH_COOKIE)
        if not token:
            return _error("No refresh token: sign in again", 401, "UNAUTHENTICATED")
        try:
            user_id, replacement = await self.refresh_tokens.rotate(token)
        except InvalidRefreshToken as exc:
            response = _error(f"The refresh token is not valid ({exc}): sign in again", 401,
                              "UNAUTHENTICATED")
            if not isinstance(from_body, str):
                self._clear_cookie(response, ACCESS_COOKIE, "/")
                self._clear_cookie(response, REFRESH_COOKIE, AUTH_PATH)
            return response
        tokens = await self.issue(user_id, refresh_token=replacement)
        response = _json(tokens)
        return response if isinstance(from_body, str) else self._with_cookies(response, tokens)

    async def logout(self, request: Request) -> Response:
        if self._cross_site(request):
            return _error("Cross-site sign-out refused", 403, "FORBIDDEN")
        try:
            body = await self._json_body(request)
        except SignInError as exc:
            return _error(exc.message, exc.status)
        from_body = body.get("refresh_token")
        token = from_body if isinstance(from_body, str) else request.cookies.get(REFRESH_COOKIE)
        if token:
            await self.refresh_tokens.revoke(token)
        return_to = request.query_params.get("return_to")
        response: Response = (
            RedirectResponse(safe_return_to(return_to), status_code=303)
            if return_to else Response(status_code=204)
        )
        self._clear_cookie(response, ACCESS_COOKIE, "/")
        self._clear_cookie(response, REFRESH_COOKIE, AUTH_PATH)
        return response

    async def provider_list(self, request: Request) -> Response:
        return _json({"providers": [
            {"name": p.name, "default": p.default, "realms": list(p.realms),
             "login": f"{AUTH_PATH}/login?provider={p.name}"}
            for p in self.oidc.providers.values()
        ]})

    async def dev_token(self, request: Request) -> Response:
        if not self.settings.dev:
            return _error("Dev tokens exist in development mode only (PEK_DEV=true)", 404,
                          "NOT_FOUND")
        try:
            body = await self._json_body(request)
        except SignInError as exc:
            return _error(exc.message, exc.status)
        user = body.get("user")
        if not isinstance(user, str):
            return _error("Send {\"user\": \"<User id>\"}", 400, "BAD_USER_INPUT")
        try:
            local_id = ids.decode(user.strip(), expected_type="User").local_id
        except ids.InvalidGlobalId as exc:
            return _error(f"'user' is not a User id: {exc}", 400, "BAD_USER_INPUT")
        async with self.sessions() as session:
            exists = await session.get(models.User, local_id)
        if exists is None:
            return _error("No such user", 404, "NOT_FOUND")
        access_token, expires_at = self.signer.mint(local_id)
        return _json({"access_token": access_token, "token_type": "Bearer",
                      "expires_in": max(0, expires_at - int(time.time()))})

    async def jwks(self, request: Request) -> Response:
        response = _json(self.keys.jwks())
        # Verifiers cache it anyway; a short max-age lets intermediaries help.
        response.headers["cache-control"] = "public, max-age=60"
        return response
