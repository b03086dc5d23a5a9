"""The hub's tokens: forged ones are refused by the router (401) and, sent straight to each
subgraph's HTTP endpoint, by the subgraph itself (401 UNAUTHENTICATED); keys rotate with overlap."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pek.hub.service import HubSubgraph
from pek.realm.service import RealmSubgraph
from pek.schema import ids
from pek.schema.tokens import (
    HttpJwksSource,
    InvalidToken,
    KeyDirectory,
    KeyFile,
    TokenSigner,
    TokenVerifier,
    rotate_keys,
    verifier_for,
)
from pek.settings import Settings
from tests.processes import free_port

from .conftest import Stack, serve

ME = {"query": "{ me { id } }"}
SCOREBOARD = {"query": '{ groups(first: 3) { edges { node { scoreboard(semester: "2025-2026/1")'
                       " { pointStatus } } } } }"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(settings: Settings, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": settings.token_issuer, "sub": ids.encode("User", 1), "aud": settings.token_audience,
        "iat": now, "nbf": now, "exp": now + 300, "jti": "x",
    }
    for key, value in changes.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def _sign(settings: Settings, claims: dict[str, Any], key: KeyFile | None = None) -> str:
    active = key or KeyDirectory(settings.key_dir).ensure_active()
    return jwt.encode(claims, active.private_key, algorithm="EdDSA", headers={"kid": active.kid})


def forged_tokens(settings: Settings) -> dict[str, str]:
    """Every way to fake or misuse a token the issue lists, each a token the hub never issued
    for this audience (or no longer valid)."""
    directory = KeyDirectory(settings.key_dir)
    active = directory.ensure_active()
    public_raw = active.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    good = _sign(settings, _claims(settings))
    header, payload, signature = good.split(".")
    other_issuer_key = KeyFile(active.kid, time.time(), time.time(),
                               Ed25519PrivateKey.generate())
    tampered = json.loads(base64.urlsafe_b64decode(payload + "==="))
    tampered["sub"] = ids.encode("User", 2)
    return {
        "alg none": _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": active.kid}).encode())
        + "." + payload + ".",
        # HS/RS confusion: an HMAC keyed with the public key the JWKS publishes.
        "HS256 with the public key": _hs256(_claims(settings), public_raw, active.kid),
        "expired": _sign(settings, _claims(settings, iat=int(time.time()) - 4000,
                                           nbf=int(time.time()) - 4000,
                                           exp=int(time.time()) - 3000)),
        "future nbf": _sign(settings, _claims(settings, nbf=int(time.time()) + 3000)),
        "wrong issuer": _sign(settings, _claims(settings, iss="https://evil.example")),
        "wrong audience": _sign(settings, _claims(settings, aud="another-service")),
        "unknown kid": _sign(settings, _claims(settings),
                             KeyFile("no-such-kid", time.time(), time.time(),
                                     Ed25519PrivateKey.generate())),
        "key of another issuer": _sign(settings, _claims(settings), other_issuer_key),
        "tampered payload": header + "." + _b64(json.dumps(tampered).encode()) + "." + signature,
        "missing exp": _sign(settings, _claims(settings, exp=None)),
        "not a user": _sign(settings, _claims(settings, sub="root")),
        "garbage": "not.a.jwt",
    }


def _hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    import hashlib
    import hmac

    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(claims).encode())
    mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(mac)}"


def test_verifier_accepts_the_hubs_token_and_refuses_every_forgery(tmp_path: Path) -> None:
    settings = Settings(key_dir=str(tmp_path / "keys"))
    verifier = verifier_for(settings)
    token, _ = TokenSigner.from_settings(settings).mint(7)
    assert verifier.verify(token).user_id == 7
    for name, forged in forged_tokens(settings).items():
        with pytest.raises(InvalidToken):
            verifier.verify(forged)
            pytest.fail(f"{name} was accepted")


@pytest.fixture
async def federated(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    """The hub over real HTTP on loopback; a realm and a router that know the hub only by its
    URL, so both fetch its JWKS over HTTP."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'pek.sqlite3'}"
    hub_port = free_port()
    hub_settings = Settings(demo_data=True, hub_database_url=url, realm_database_url=url,
                            key_dir=str(tmp_path / "keys"))
    hub = HubSubgraph(hub_settings)
    await hub.start()
    server, task = await serve(hub.asgi_app(), hub_port)
    # The realm and router have no key directory: only the hub's URL.
    remote = hub_settings.replace(key_dir=str(tmp_path / "nowhere"),
                                  hub_url=f"http://127.0.0.1:{hub_port}/graphql")
    realm = RealmSubgraph(remote)
    await realm.start()
    source = verifier_for(remote).source
    assert isinstance(source, HttpJwksSource)
    # The realm's first verification would fetch synchronously; in this single event loop
    # (the hub serves from it too) fetch it asynchronously first.
    await source.refresh()
    try:
        yield {"hub": hub, "realm": realm, "hub_settings": hub_settings, "remote": remote}
    finally:
        server.should_exit = True
        await task
        await realm.aclose()
        await hub.aclose()


def _asgi(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sub")


def _refused(body: dict[str, Any]) -> str:
    """The code of a subgraph's refusal: no data, one UNAUTHENTICATED error."""
    assert "data" not in body, body
    codes = [e["extensions"]["code"] for e in body["errors"]]
    assert codes == ["UNAUTHENTICATED"], body
    return str(codes[0])


async def test_each_subgraph_refuses_forged_tokens_on_its_http_endpoint(
    federated: dict[str, Any],
) -> None:
    hub, realm, settings = federated["hub"], federated["realm"], federated["hub_settings"]
    good, _ = TokenSigner.from_settings(settings).mint(1)
    async with _asgi(hub.asgi_app()) as hub_http, _asgi(realm.asgi_app()) as realm_http:
        async def hub_me(token: str) -> Any:
            answer = await hub_http.post("/graphql", json=ME,
                                         headers={"authorization": f"Bearer {token}"})
            if answer.status_code == 401:
                return _refused(answer.json())
            return answer.json()["data"]["me"]

        async def realm_scoreboards(token: str) -> Any:
            answer = await realm_http.post("/graphql", json=SCOREBOARD,
                                           headers={"authorization": f"Bearer {token}"})
            if answer.status_code == 401:
                return _refused(answer.json())
            return [e["node"]["scoreboard"] for e in answer.json()["data"]["groups"]["edges"]]

        # The control: the hub's own token is accepted by both (the realm via HTTP JWKS).
        assert await hub_me(good) == {"id": ids.encode("User", 1)}
        assert all(board is not None for board in await realm_scoreboards(good))
        # A bare header naming a user is nothing.
        bare = await hub_http.post("/graphql", json=ME, headers={"x-pek-dev-user": "1"})
        assert bare.json()["data"]["me"] is None
        for name, forged in forged_tokens(settings).items():
            assert await hub_me(forged) == "UNAUTHENTICATED", f"hub accepted: {name}"
            assert await realm_scoreboards(forged) == "UNAUTHENTICATED", f"realm accepted: {name}"


async def test_router_answers_401_unauthenticated_to_forged_tokens(
    federated: dict[str, Any],
) -> None:
    from pek.router.composition import SubgraphDefinition, compose
    from pek.router.edge.auth import EdgeAuth
    from pek.router.gateway import Gateway
    from pek.router.http import create_app
    from pek.router.transport import InProcessTransport

    hub, realm, remote = federated["hub"], federated["realm"], federated["remote"]
    supergraph = compose([SubgraphDefinition("hub", "in-process://hub", hub.sdl()),
                          SubgraphDefinition("realm", "in-process://realm", realm.sdl())])
    gateway = Gateway(supergraph, InProcessTransport({"hub": hub, "realm": realm}))
    # The router knows the hub by URL: JWKS over HTTP, like `pek router`.
    auth = EdgeAuth.from_settings(remote)
    async with _asgi(create_app(gateway, remote, auth=auth)) as router:
        good, _ = TokenSigner.from_settings(federated["hub_settings"]).mint(1)
        ok = await router.post("/graphql", json=ME, headers={"authorization": f"Bearer {good}"})
        assert ok.status_code == 200 and ok.json()["data"]["me"]["id"] == ids.encode("User", 1)
        for name, forged in forged_tokens(federated["hub_settings"]).items():
            for headers in ({"authorization": f"Bearer {forged}"},
                            {"cookie": f"pek_access={forged}"}):
                answer = await router.post("/graphql", json=ME, headers=headers)
                assert answer.status_code == 401, name
                assert answer.headers["www-authenticate"].startswith("Bearer"), name
                error = answer.json()["errors"][0]
                assert error["extensions"]["code"] == "UNAUTHENTICATED", name
        scheme = await router.post("/graphql", json=ME, headers={"authorization": "Basic eDp5"})
        assert scheme.status_code == 401
        # The JWKS is public through the router too (passed through to the hub).
        jwks = await router.get("/.well-known/jwks.json")
        assert jwks.status_code == 200 and all("d" not in k for k in jwks.json()["keys"])
    await auth.aclose()


def test_rotation_publishes_ahead_and_retires_after_the_last_token_expired(
    tmp_path: Path,
) -> None:
    settings = Settings(key_dir=str(tmp_path / "keys"), jwks_cache_seconds=300,
                        access_token_seconds=600)
    directory = KeyDirectory(settings.key_dir)
    first = directory.ensure_active()
    old_token, _ = TokenSigner.from_settings(settings).mint(3)
    second = rotate_keys(settings)
    published = {k["kid"] for k in directory.jwks()["keys"]}
    # Published at once, but not signing before every verifier's cache has seen it.
    assert published == {first.kid, second.kid}
    assert directory.active().kid == first.kid  # type: ignore[union-attr]
    assert directory.active(now=time.time() + 301).kid == second.kid  # type: ignore[union-attr]
    # The retired key stays while tokens it signed may live...
    verifier = verifier_for(settings)
    assert verifier.verify(old_token).user_id == 3
    # ...and is deleted by a later rotation once its successor has signed longer than a token
    # lives (simulated by back-dating the successor).
    now = time.time()
    directory.write(KeyFile(first.kid, first.created_at, now - 20_000, first.private_key))
    directory.write(KeyFile(second.kid, second.created_at, now - 10_000, second.private_key))
    third = rotate_keys(settings)
    remaining = {k["kid"] for k in directory.jwks()["keys"]}
    assert first.kid not in remaining and {second.kid, third.kid} <= remaining
    with pytest.raises(InvalidToken, match="unknown signing key"):
        verifier.verify(old_token)
    assert all(oct(p.stat().st_mode)[-3:] == "600" for p in Path(settings.key_dir).glob("*.json"))


def test_key_directory_ignores_broken_files(tmp_path: Path) -> None:
    directory = KeyDirectory(tmp_path)
    directory.ensure_active()
    (tmp_path / "broken.json").write_text("{not json")
    assert len(directory.jwks()["keys"]) == 1


async def test_http_jwks_source_refetches_for_an_unknown_kid_at_most_so_often(
    tmp_path: Path,
) -> None:
    requests: list[str] = []
    directory = KeyDirectory(tmp_path)
    key = directory.ensure_active()

    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) \
            -> None:
        requests.append(scope["path"])
        body = json.dumps(directory.jwks()).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    port = free_port()
    server, task = await serve(app, port)
    try:
        source = HttpJwksSource(f"http://127.0.0.1:{port}/.well-known/jwks.json")
        verifier = TokenVerifier(source, "urn:pek:hub", "pek-federation")
        await source.refresh()
        assert source.get(key.kid) is not None
        forged = jwt.encode({"sub": "x"}, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                            headers={"kid": "unknown"})
        for _ in range(5):
            with pytest.raises(InvalidToken):
                await verifier.averify(forged)
        # One fetch at start; the flood of unknown kids is rate-limited to none more here.
        assert requests == ["/.well-known/jwks.json"]
    finally:
        server.should_exit = True
        await task


async def test_stack_without_provider_still_serves_anonymous(stack: Stack) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.post(f"{stack.origin}/graphql", json=ME)
    assert answer.json() == {"data": {"me": None}}
