"""Identity providers: a realm with a provider of its own, AuthSCH (its fixed endpoints, no
discovery) and the providers file. Real providers (npm ``oidc-provider``) over HTTP on loopback,
driven by a test browser through the router; nothing is mocked."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from sqlalchemy import delete, func, select

from pek.hub import models
from pek.hub.auth.oidc import ProvidersFileError, authsch_endpoints, providers_from_settings
from pek.schema import ids
from pek.settings import Settings
from tests.processes import PEK, free_port

from .conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    Browser,
    Provider,
    Stack,
    start_provider,
    start_stack,
)

ME = {"query": "{ me { id name fullProfile { email cellPhone } } }"}
#: The realm of the stack that signs in through a provider of its own.
KIR = "kir"


async def sign_in(browser: Browser, origin: str, query: str = "",
                  login: str = "anna") -> httpx.Response:
    """``/auth/login?<query>``, then the provider's login and consent pages as a person
    would fill them in (a provider session from before skips them)."""
    page = await browser.go("GET", f"{origin}/auth/login?return_to=/graphql&{query}",
                            headers={"accept": "text/html"})
    for prompt, fields in (("login", {"login": login, "password": "anything"}),
                           ("consent", {})):
        if f'value="{prompt}"' in page.text:
            page = await browser.submit(page, prompt, **fields)
    return page


async def me_of(browser: Browser, origin: str) -> dict[str, Any]:
    response = await browser.go("POST", f"{origin}/graphql", json=ME)
    assert response.status_code == 200, response.text
    me: dict[str, Any] = response.json()["data"]["me"]
    assert me is not None, "not signed in"
    return me


def authorize_url(browser: Browser, provider: Provider, path: str) -> str | None:
    """The provider's authorization request the browser was sent to, if any."""
    return next((u for u in browser.visited if u.startswith(f"{provider.issuer}{path}?")), None)


@contextlib.asynccontextmanager
async def running(settings: Settings, port: int) -> AsyncIterator[Stack]:
    stack, server, task = await start_stack(settings, port)
    try:
        yield stack
    finally:
        server.should_exit = True
        await task
        await stack.realm.aclose()
        await stack.hub.aclose()


# -- a realm with its own provider -------------------------------------------------------------


@pytest.fixture
def kir_provider(router_port: int) -> Iterator[Provider]:
    """A second provider: another issuer, and other claims for the same login names (family
    name Kir, e-mail at kir.example.org)."""
    started = start_provider([f"http://127.0.0.1:{router_port}/auth/callback"],
                             FAMILY_NAME="Kir", EMAIL_DOMAIN="kir.example.org")
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
async def two_provider_stack(
    provider: Provider, kir_provider: Provider, stack_settings: Settings, router_port: int,
    tmp_path: Path,
) -> AsyncIterator[Stack]:
    """The stack serving realm ``kir``; the default provider from the settings, the second one
    given to realm ``kir`` by the providers file."""
    providers_file = tmp_path / "providers.json"
    providers_file.write_text(json.dumps({
        "kir-sso": {
            "discovery_url": kir_provider.discovery_url,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scopes": ["openid", "profile", "email", "phone"],
            "realms": [KIR],
        },
    }))
    settings = stack_settings.replace(
        realm_id=KIR,
        realm_name="Kir-Dev",
        oidc_discovery_url=provider.discovery_url,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_providers_file=str(providers_file),
    )
    async with running(settings, router_port) as stack:
        yield stack


async def test_a_realm_signs_in_through_its_own_provider_and_others_through_the_default(
    two_provider_stack: Stack, provider: Provider, kir_provider: Provider
) -> None:
    stack, origin = two_provider_stack, two_provider_stack.origin

    async with httpx.AsyncClient() as client:
        listed = await client.get(f"{origin}/auth/providers")
    assert listed.status_code == 200
    assert listed.json() == {"providers": [
        {"name": "oidc", "default": True, "realms": [], "login": "/auth/login?provider=oidc"},
        {"name": "kir-sso", "default": False, "realms": [KIR],
         "login": "/auth/login?provider=kir-sso"},
    ]}

    # Realm kir: the browser goes to the second provider only, and ends signed in with the
    # profile of that provider's claims.
    kir_browser = Browser()
    try:
        landed = await sign_in(kir_browser, origin, f"realm={KIR}")
        assert str(landed.url) == f"{origin}/graphql"
        kir_authorize = authorize_url(kir_browser, kir_provider, "/auth")
        assert kir_authorize is not None, kir_browser.visited
        assert not any(u.startswith(provider.issuer) for u in kir_browser.visited)
        query = parse_qs(urlsplit(kir_authorize).query)
        assert query["scope"] == ["openid profile email phone"]
        assert query["code_challenge_method"] == ["S256"]
        kir_me = await me_of(kir_browser, origin)
        assert kir_me["name"] == "Kir Anna"
        assert kir_me["fullProfile"] == {"email": "anna@kir.example.org",
                                         "cellPhone": "+36 1 463 1111"}
        # Again through the same provider: the same user.
        await sign_in(kir_browser, origin, f"realm={KIR}")
        assert (await me_of(kir_browser, origin))["id"] == kir_me["id"]
    finally:
        await kir_browser.aclose()

    # No realm (or a realm without a provider of its own): the default provider. The same
    # login name there has the same `sub` ("anna") but is another identity, so another user.
    default_browser = Browser()
    try:
        await sign_in(default_browser, origin)
        assert authorize_url(default_browser, provider, "/auth") is not None
        assert not any(u.startswith(kir_provider.issuer) for u in default_browser.visited)
        default_me = await me_of(default_browser, origin)
        assert default_me["name"] == "Teszt Anna"
        assert default_me["fullProfile"]["email"] == "anna@example.org"
        assert default_me["id"] != kir_me["id"]
        elsewhere = await default_browser.go(
            "GET", f"{origin}/auth/login?realm=some-other-realm", follow=False)
        assert elsewhere.status_code == 302
        assert elsewhere.headers["location"].startswith(f"{provider.issuer}/auth?")
        by_name = await default_browser.go("GET", f"{origin}/auth/login?provider=kir-sso",
                                           follow=False)
        assert by_name.headers["location"].startswith(f"{kir_provider.issuer}/auth?")
        unknown = await default_browser.go("GET", f"{origin}/auth/login?provider=nope")
        assert unknown.status_code == 400
        assert "Unknown identity provider 'nope'" in unknown.json()["errors"][0]["message"]
    finally:
        await default_browser.aclose()

    kir_user = ids.decode(kir_me["id"], expected_type="User").local_id
    default_user = ids.decode(default_me["id"], expected_type="User").local_id
    async with stack.hub.sessionmaker() as session:
        identities = (await session.scalars(
            select(models.Identity).where(models.Identity.subject == "anna")
            .order_by(models.Identity.provider)
        )).all()
        assert [(i.provider, i.user_id) for i in identities] == [
            ("kir-sso", kir_user), ("oidc", default_user)]
        kir_row = await session.get(models.User, kir_user)
        default_row = await session.get(models.User, default_user)
        assert kir_row is not None and default_row is not None
        # Only the default provider's subject is the user's `subject` (AuthSCH's UUID there).
        assert (kir_row.subject, default_row.subject) == (None, "anna")
        assert (kir_row.first_name, kir_row.last_name) == ("Anna", "Kir")
        assert (default_row.first_name, default_row.last_name) == ("Anna", "Teszt")
        assert {kir_row.username, default_row.username} == {"anna", "anna-2"}


async def test_a_callback_completes_with_the_provider_the_login_started_with(
    two_provider_stack: Stack, provider: Provider, kir_provider: Provider, browser: Browser
) -> None:
    """The code of the realm's provider is exchanged there, not at the default provider,
    whatever the callback's query says about realms."""
    origin = two_provider_stack.origin
    page = await browser.go("GET", f"{origin}/auth/login?realm={KIR}&response=json")
    page = await browser.submit(page, "login", login="bence", password="x")
    answer = await browser.submit(page, "consent")
    assert answer.status_code == 200, answer.text
    async with httpx.AsyncClient() as api:
        me = await api.post(f"{origin}/graphql", json=ME, headers={
            "authorization": f"Bearer {answer.json()['access_token']}"})
    assert me.json()["data"]["me"]["name"] == "Kir Bence"
    callback = next(u for u in browser.visited if u.startswith(f"{origin}/auth/callback?"))
    # Replaying that callback (its code is spent, its transaction cookie cleared) fails cleanly.
    replay = await browser.go("GET", callback + f"&realm={KIR}")
    assert replay.status_code == 400
    assert "start again" in replay.json()["errors"][0]["message"]


# -- the providers file ------------------------------------------------------------------------


def _settings_with_file(tmp_path: Path, content: object, **more: Any) -> Settings:
    path = tmp_path / "providers.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return Settings(oidc_providers_file=str(path), **more)


GOOD = {"discovery_url": "https://sso.example.org/.well-known/openid-configuration",
        "client_id": "pek"}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"kir": {', "not valid JSON"),
        ([GOOD], "expected a JSON object of providers by name, got list"),
        ({"kir": "https://sso.example.org"}, "provider 'kir': expected a JSON object"),
        ({"kir": {"discovery_url": GOOD["discovery_url"]}}, "provider 'kir': needs a client_id"),
        ({"kir": {"client_id": "pek", "authorize_url": "https://sso.example.org/a"}},
         "provider 'kir': needs a discovery_url, or an authorize_url and a token_url"),
        ({"kir": {**GOOD, "realms": "kir"}}, "provider 'kir': realms must be a list of realm ids"),
        ({"kir": {**GOOD, "discovery_uri": "x"}}, "provider 'kir': unknown key(s) discovery_uri"),
        ({"kir": {**GOOD, "client_secret": 42}}, "provider 'kir': client_secret must be a string"),
        ({"kir": {**GOOD, "discovery_url": "sso.example.org"}},
         "provider 'kir': discovery_url must be an http(s) URL"),
        ({"kir": {**GOOD, "scopes": "profile email"}}, "provider 'kir': scopes must be a string"),
        ({"kir": {**GOOD, "token_endpoint_auth_method": "private_key_jwt"}},
         "provider 'kir': token_endpoint_auth_method must be one of"),
        ({"Kir SSO": GOOD}, "provider 'Kir SSO': a name is 1-100 lower-case letters"),
        ({"a": {**GOOD, "realms": ["kir"]}, "b": {**GOOD, "realms": ["x", "kir"]}},
         "realm 'kir' is given to both 'a' and 'b'"),
    ],
)
def test_a_malformed_providers_file_is_a_clear_error(
    tmp_path: Path, content: object, message: str
) -> None:
    settings = _settings_with_file(tmp_path, content)
    with pytest.raises(ProvidersFileError) as raised:
        providers_from_settings(settings)
    assert f"PEK_OIDC_PROVIDERS_FILE={tmp_path / 'providers.json'}: " in str(raised.value)
    assert message in str(raised.value)


def test_providers_file_edge_cases(tmp_path: Path) -> None:
    with pytest.raises(ProvidersFileError, match="cannot read it"):
        providers_from_settings(Settings(oidc_providers_file=str(tmp_path / "missing.json")))
    # A file provider may not take the default provider's name (its identities would mix).
    clash = _settings_with_file(tmp_path, {"authsch": GOOD}, oidc_client_id="pek")
    with pytest.raises(ProvidersFileError, match="'authsch': the name of the default"):
        providers_from_settings(clash)
    providers = providers_from_settings(_settings_with_file(
        tmp_path,
        {"kir": {**GOOD, "realms": ["kir", "kir"], "scopes": " openid  email "},
         "manual": {"client_id": "x", "authorize_url": "https://sso.example.org/a",
                    "token_url": "https://sso.example.org/t", "issuer": "https://sso.example.org",
                    "token_endpoint_auth_method": "client_secret_post"}},
        oidc_client_id="pek",
    ))
    assert list(providers) == ["authsch", "kir", "manual"]
    assert providers["authsch"].default and not providers["kir"].default
    assert (providers["kir"].realms, providers["kir"].scopes) == (("kir",), "openid email")
    assert providers["manual"].endpoints == {
        "authorization_endpoint": "https://sso.example.org/a",
        "token_endpoint": "https://sso.example.org/t",
        "issuer": "https://sso.example.org",
    }
    assert providers["manual"].token_endpoint_auth_method == "client_secret_post"


def test_the_hub_does_not_start_with_a_malformed_providers_file(tmp_path: Path) -> None:
    """``pek hub`` stops at start-up with one line (no traceback), saying which file, which
    provider and what is wrong."""
    providers_file = tmp_path / "providers.json"
    providers_file.write_text(json.dumps({"kir": {**GOOD, "realms": "kir"}}))
    env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "PEK_HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}",
        "PEK_KEY_DIR": str(tmp_path / "keys"),
        "PEK_PORT": str(free_port()),
        "PEK_OIDC_PROVIDERS_FILE": str(providers_file),
    }
    finished = subprocess.run([PEK, "hub"], env=env, cwd=tmp_path, capture_output=True,
                              timeout=60)
    output = finished.stdout.decode() + finished.stderr.decode()
    assert finished.returncode == 2, output
    assert output == (f"pek: PEK_OIDC_PROVIDERS_FILE={providers_file}: provider 'kir': "
                      'realms must be a list of realm ids, e.g. ["kir"]\n'), output


def test_the_hub_refuses_the_public_secret_key_for_real_sign_ins(tmp_path: Path) -> None:
    """Outside dev mode, with a provider configured, the development secret is refused."""
    env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "PEK_HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hub.sqlite3'}",
        "PEK_KEY_DIR": str(tmp_path / "keys"),
        "PEK_PORT": str(free_port()),
        "PEK_OIDC_CLIENT_ID": "pek",
        "PEK_OIDC_CLIENT_SECRET": "s",
    }
    finished = subprocess.run([PEK, "hub"], env=env, cwd=tmp_path, capture_output=True,
                              timeout=60)
    output = finished.stdout.decode() + finished.stderr.decode()
    assert finished.returncode == 2, output
    assert output.startswith("pek: PEK_SECRET_KEY is the public development default"), output


# -- AuthSCH -----------------------------------------------------------------------------------


def test_authsch_is_the_default_with_its_real_endpoints_and_sensible_scopes() -> None:
    settings = Settings(oidc_client_id="pek", oidc_client_secret="s")
    (authsch,) = providers_from_settings(settings).values()
    assert (authsch.name, authsch.default, authsch.discovery_url) == ("authsch", True, "")
    assert dict(authsch.endpoints) == {
        "authorization_endpoint": "https://auth.sch.bme.hu/site/login",
        "token_endpoint": "https://auth.sch.bme.hu/oauth2/token",
        "userinfo_endpoint": "https://auth.sch.bme.hu/oidc/userinfo",
    }
    assert authsch.token_endpoint_auth_method == "client_secret_basic"
    # domain.md's AuthSCH scopes; by default only what fills the profile: no offline_access
    # (the hub issues its own refresh tokens) and no provider-specific ones.
    scopes = authsch.scopes.split()
    assert scopes[0] == "openid"
    assert set(scopes) <= {"openid", "profile", "email", "phone", "address"}
    assert {"profile", "email", "phone"} <= set(scopes)
    assert authsch_endpoints("http://127.0.0.1:1/")["token_endpoint"] == \
        "http://127.0.0.1:1/oauth2/token"


@pytest.fixture
def authsch(router_port: int) -> Iterator[Provider]:
    """An AuthSCH-shaped provider: its paths, UUID subjects and claims of its own."""
    started = start_provider([f"http://127.0.0.1:{router_port}/auth/callback"],
                             STYLE="authsch", LOG_REQUESTS="1")
    try:
        yield started
    finally:
        started.stop()


async def test_signs_in_through_authsch_with_the_default_configuration(
    authsch: Provider, stack_settings: Settings, router_port: int, browser: Browser
) -> None:
    # Only the client credentials and AuthSCH's base URL: no discovery URL, default scopes.
    settings = stack_settings.replace(
        oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET, authsch_url=authsch.issuer,
    )
    assert settings.oidc_discovery_url == "" and settings.oidc_scopes == Settings.oidc_scopes
    async with running(settings, router_port) as stack:
        origin = stack.origin
        async with httpx.AsyncClient() as client:
            listed = (await client.get(f"{origin}/auth/providers")).json()
        assert [(p["name"], p["default"]) for p in listed["providers"]] == [("authsch", True)]

        landed = await sign_in(browser, origin, login="anna")
        assert str(landed.url) == f"{origin}/graphql"
        authorize = authorize_url(browser, authsch, "/site/login")
        assert authorize is not None, browser.visited
        query = parse_qs(urlsplit(authorize).query)
        assert query["scope"] == [Settings.oidc_scopes]
        assert query["client_id"] == [CLIENT_ID]
        assert query["code_challenge_method"] == ["S256"] and query["state"][0]

        # The hub spoke to AuthSCH's fixed endpoints only: the code exchange with the client
        # secret in HTTP Basic, userinfo with the access token as Bearer; no discovery, and
        # no key set (the ID token is not used without one: the claims come from userinfo).
        backchannel = [r for r in authsch.requests
                       if r.startswith(("POST /oauth2/token", "GET /oidc/userinfo", "GET /."))]
        assert backchannel == ["POST /oauth2/token Basic", "GET /oidc/userinfo Bearer"]
        assert not any("well-known" in r or "jwks" in r for r in authsch.requests)

        me = await me_of(browser, origin)
        assert me["name"] == "Teszt Anna"
        assert me["fullProfile"] == {"email": "anna@example.org", "cellPhone": "+36 1 463 1111"}
        access = browser.cookie("pek_access")
        assert access is not None
        assert jwt.decode(access, options={"verify_signature": False})["sub"] == me["id"]

        user_id = ids.decode(me["id"], expected_type="User").local_id
        async with stack.hub.sessionmaker() as session:
            user = await session.get(models.User, user_id)
            identity = await session.scalar(select(models.Identity).where(
                models.Identity.user_id == user_id))
            assert user is not None and identity is not None
            # The user's subject is AuthSCH's UUID, as for users imported from it.
            assert user.subject is not None
            assert uuid.UUID(user.subject).version == 5
            assert (identity.provider, identity.subject) == ("authsch", user.subject)
            # No nickname or preferred_username from AuthSCH: the name comes from the e-mail.
            assert (user.username, user.first_name, user.last_name) == ("anna", "Anna", "Teszt")
            assert user.date_of_birth == dt.date(2001, 2, 3)
            users = await session.scalar(select(func.count()).select_from(models.User))

        # Signing in again (AuthSCH remembers the browser) finds the same user.
        await sign_in(browser, origin, login="anna")
        assert (await me_of(browser, origin))["id"] == me["id"]
        async with stack.hub.sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(models.User)) == users


async def test_an_authsch_uuid_known_before_links_to_the_existing_user(
    authsch: Provider, stack_settings: Settings, router_port: int, browser: Browser
) -> None:
    """A user imported with AuthSCH's UUID as ``subject`` (no identity row yet) is the one
    who signs in with that UUID; the profile is updated from the claims."""
    settings = stack_settings.replace(
        oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET, authsch_url=authsch.issuer,
    )
    async with running(settings, router_port) as stack:
        # Learn the UUID AuthSCH gives "cecil" by signing in once through the JSON flow ...
        page = await browser.go("GET", f"{stack.origin}/auth/login?response=json")
        page = await browser.submit(page, "login", login="cecil", password="x")
        tokens = (await browser.submit(page, "consent")).json()
        first_id = ids.decode(jwt.decode(tokens["access_token"], options={
            "verify_signature": False})["sub"], expected_type="User").local_id
        async with stack.hub.sessionmaker.begin() as session:
            first = await session.get(models.User, first_id)
            assert first is not None and first.subject is not None
            cecil_uuid = first.subject
            # ... then make it an imported user: another row owns the UUID, no identity yet.
            await session.execute(delete(models.Identity).where(
                models.Identity.user_id == first_id))
            await session.delete(first)
            await session.flush()
            imported = models.User(subject=cecil_uuid, username="cecil-imported",
                                   first_name="Old", last_name="Name")
            session.add(imported)
            await session.flush()
            imported_id = imported.id
        assert await session_count(stack, models.Identity.subject == cecil_uuid) == 0

        await sign_in(browser, stack.origin, login="cecil")
        me = await me_of(browser, stack.origin)
        assert ids.decode(me["id"], expected_type="User").local_id == imported_id
        assert me["name"] == "Teszt Cecil"
        assert await session_count(stack, models.Identity.subject == cecil_uuid) == 1


async def session_count(stack: Stack, condition: Any) -> int:
    async with stack.hub.sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(models.Identity).where(condition))
    return int(count or 0)
