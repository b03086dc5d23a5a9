"""Sign-in end to end: a browser, the router on loopback, the hub behind it, and a real OpenID
Connect provider (npm ``oidc-provider``) over HTTP. Nothing is mocked."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
from sqlalchemy import func, select

from pek.hub import models
from pek.hub.auth.routes import Transaction
from pek.schema import ids
from pek.settings import Settings

from .conftest import CLIENT_ID, CLIENT_SECRET, Browser, Provider, Stack, set_cookie_headers

ME = {"query": "{ me { id name fullProfile { email cellPhone } } }"}


def provider_settings(settings: Settings, provider: Provider) -> Settings:
    return settings.replace(
        oidc_discovery_url=provider.discovery_url,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
    )


async def sign_in(browser: Browser, origin: str, login: str = "anna") -> httpx.Response:
    """Drive the provider's login and consent pages as a person would (a provider session
    from before skips them)."""
    page = await browser.go("GET", f"{origin}/auth/login?return_to=/graphql",
                            headers={"accept": "text/html"})
    for prompt, fields in (("login", {"login": login, "password": "anything"}),
                           ("consent", {})):
        if f'value="{prompt}"' in page.text:
            page = await browser.submit(page, prompt, **fields)
    return page


async def test_browser_signs_in_through_the_provider_and_is_known_everywhere(
    provider: Provider, stack_settings: Settings, router_port: int, browser: Browser
) -> None:
    from .conftest import start_stack

    settings = provider_settings(stack_settings, provider)
    stack, server, task = await start_stack(settings, router_port)
    try:
        await _signed_in_flow(stack, provider, browser)
    finally:
        server.should_exit = True
        await task
        await stack.realm.aclose()
        await stack.hub.aclose()


async def _signed_in_flow(stack: Stack, provider: Provider, browser: Browser) -> None:
    origin = stack.origin
    anonymous = await browser.go("POST", f"{origin}/graphql", json=ME)
    assert anonymous.json() == {"data": {"me": None}}

    landed = await sign_in(browser, origin)

    # The authorization request carried PKCE (S256), state and nonce; the provider answered
    # the router's origin, which passed the callback through to the hub.
    authorize = next(u for u in browser.visited if u.startswith(provider.issuer + "/auth?"))
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["state"][0] and query["nonce"][0]
    assert query["redirect_uri"] == [f"{origin}/auth/callback"]
    assert any(u.startswith(f"{origin}/auth/callback?code=") for u in browser.visited)
    assert str(landed.url) == f"{origin}/graphql"

    # Browser cookies: httpOnly, Secure, SameSite=Lax; the refresh token only for /auth.
    (access_header,) = set_cookie_headers(browser, "pek_access")
    (refresh_header,) = set_cookie_headers(browser, "pek_refresh")
    for header in (access_header, refresh_header):
        lowered = header.lower()
        assert "httponly" in lowered and "secure" in lowered and "samesite=lax" in lowered
    assert "path=/auth" in refresh_header.lower()

    access = browser.cookie("pek_access")
    assert access is not None
    claims = jwt.decode(access, options={"verify_signature": False})
    assert jwt.get_unverified_header(access)["alg"] == "EdDSA"
    assert claims["aud"] == stack.settings.token_audience
    assert claims["exp"] - claims["iat"] == stack.settings.access_token_seconds

    # Signed in through the router: the hub upserted the user from the provider's claims.
    me = await browser.go("POST", f"{origin}/graphql", json=ME)
    assert me.status_code == 200, me.text
    assert me.json() == {"data": {"me": {
        "id": claims["sub"],
        "name": "Teszt Anna",
        "fullProfile": {"email": "anna@example.org", "cellPhone": "+36 1 463 1111"},
    }}}
    user_id = ids.decode(claims["sub"], expected_type="User").local_id
    async with stack.hub.sessionmaker() as session:
        user = await session.get(models.User, user_id)
        identity = await session.scalar(select(models.Identity).where(
            models.Identity.user_id == user_id))
        assert user is not None and identity is not None
        assert (user.first_name, user.last_name, user.nickname, user.username) == (
            "Anna", "Teszt", "Annaka", "anna")
        assert (identity.provider, identity.subject) == ("oidc", "anna")
        users_before = await session.scalar(select(func.count()).select_from(models.User))

    # A second sign-in finds the same user (no duplicate), and updates nothing else.
    await sign_in(browser, origin)
    async with stack.hub.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(models.User)) \
            == users_before
    assert (await browser.go("POST", f"{origin}/graphql", json=ME)).json()["data"]["me"]["id"] \
        == claims["sub"]

    # Refresh: a new pair; the used refresh token is dead, and reusing it revokes the family.
    old_refresh = browser.cookie("pek_refresh")
    refreshed = await browser.go("POST", f"{origin}/auth/refresh")
    assert refreshed.status_code == 200, refreshed.text
    body = refreshed.json()
    assert body["token_type"] == "Bearer" and body["refresh_token"] != old_refresh
    assert browser.cookie("pek_refresh") == body["refresh_token"]
    api = httpx.AsyncClient(timeout=10)
    try:
        bearer = await api.post(f"{origin}/graphql", json=ME,
                                headers={"authorization": f"Bearer {body['access_token']}"})
        assert bearer.json()["data"]["me"]["name"] == "Teszt Anna"
        reused = await api.post(f"{origin}/auth/refresh", json={"refresh_token": old_refresh})
        assert reused.status_code == 401
        assert reused.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        # The theft detection revoked the browser's current refresh token too.
        current = await api.post(f"{origin}/auth/refresh",
                                 json={"refresh_token": body["refresh_token"]})
        assert current.status_code == 401
    finally:
        await api.aclose()

    # Sign out: cookies cleared, the refresh token revoked.
    await sign_in(browser, origin)
    last_refresh = browser.cookie("pek_refresh")
    signed_out = await browser.go("POST", f"{origin}/auth/logout")
    assert signed_out.status_code == 204
    assert browser.cookie("pek_access") is None and browser.cookie("pek_refresh") is None
    assert (await browser.go("POST", f"{origin}/graphql", json=ME)).json() == \
        {"data": {"me": None}}
    async with httpx.AsyncClient() as api2:
        dead = await api2.post(f"{origin}/auth/refresh", json={"refresh_token": last_refresh})
    assert dead.status_code == 401


async def test_api_client_gets_tokens_as_json(
    provider: Provider, stack_settings: Settings, router_port: int, browser: Browser
) -> None:
    from .conftest import start_stack

    stack, server, task = await start_stack(provider_settings(stack_settings, provider),
                                            router_port)
    try:
        page = await browser.go("GET", f"{stack.origin}/auth/login?response=json")
        page = await browser.submit(page, "login", login="bence", password="x")
        answer = await browser.submit(page, "consent")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/json")
        tokens = answer.json()
        assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token"}
        assert browser.cookie("pek_access") is None  # an API client gets no cookies
        async with httpx.AsyncClient() as api:
            me = await api.post(f"{stack.origin}/graphql", json=ME,
                                headers={"authorization": f"Bearer {tokens['access_token']}"})
        assert me.json()["data"]["me"]["name"] == "Teszt Bence"
    finally:
        server.should_exit = True
        await task
        await stack.realm.aclose()
        await stack.hub.aclose()


async def test_callback_without_the_login_transaction_or_with_a_wrong_state_is_refused(
    provider: Provider, stack_settings: Settings, router_port: int, browser: Browser
) -> None:
    from .conftest import start_stack

    stack, server, task = await start_stack(provider_settings(stack_settings, provider),
                                            router_port)
    try:
        stray = await browser.go("GET", f"{stack.origin}/auth/callback?code=x&state=y")
        assert stray.status_code == 400
        assert "start again" in stray.json()["errors"][0]["message"]
        # A started sign-in, but a callback with another state (login CSRF): refused.
        started = await browser.go("GET", f"{stack.origin}/auth/login", follow=False)
        assert started.status_code == 302
        forged = await browser.go("GET", f"{stack.origin}/auth/callback?code=x&state=forged")
        assert forged.status_code == 400
        assert "state" in forged.json()["errors"][0]["message"]
        # An open redirect through return_to is neutralised.
        evil = await browser.go("GET", f"{stack.origin}/auth/login?return_to=//evil.example/x",
                                follow=False)
        assert evil.status_code == 302
        sealed = browser.cookie("pek_auth_tx") or ""
        transaction = Transaction.unseal(sealed, stack.settings.secret_key)
        assert transaction is not None and transaction.return_to == "/"
    finally:
        server.should_exit = True
        await task
        await stack.realm.aclose()
        await stack.hub.aclose()


async def test_without_a_provider_login_is_a_clear_error(stack: Stack) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{stack.origin}/auth/login")
        assert response.status_code == 404
        assert "No identity provider is configured" in response.json()["errors"][0]["message"]
        jwks = await client.get(f"{stack.origin}/.well-known/jwks.json")
    assert jwks.status_code == 200
    (key,) = jwks.json()["keys"]
    assert (key["kty"], key["crv"], key["alg"]) == ("OKP", "Ed25519", "EdDSA")
    assert "d" not in key
