"""Helpers of the many-realms tests: settings, viewers, GraphQL over an ASGI endpoint, and a
realm process's app (realms alpha and beta, canary data in alpha) over ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from pek.realm import models
from pek.realm.canary import Canary, seed_canary
from pek.realm.service import RealmSubgraph
from pek.settings import Settings


def realm_settings(tmp_path: Path, **changes: Any) -> Settings:
    """Dev-mode settings whose token keys (if this build has them) live under ``tmp_path``."""
    settings = Settings(dev=True, **changes)
    if hasattr(settings, "key_dir"):
        settings = settings.replace(key_dir=str(tmp_path / "keys"))
    return settings


def viewer_headers(settings: Settings, user_id: int) -> dict[str, str]:
    """Headers that make ``user_id`` the viewer: a hub access token where this build signs
    them, and the dev header where it still honours that."""
    headers = {"x-pek-dev-user": str(user_id)}
    try:
        from pek.schema import tokens  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return headers
    tokens.KeyDirectory(settings.key_dir).ensure_active()
    token, _ = tokens.TokenSigner.from_settings(settings).mint(user_id)
    headers["authorization"] = f"Bearer {token}"
    return headers


async def post_graphql(
    client: httpx.AsyncClient,
    path: str,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = await client.post(
        path, json={"query": query, "variables": variables or {}}, headers=headers or {}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def codes(response: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in response.get("errors", [])]


MEMBERS = "query($id: ID!) { group(id: $id) { memberships { id status user { id } } } }"


class Realm:
    def __init__(self, service: RealmSubgraph, client: httpx.AsyncClient, canary: Canary,
                 settings: Settings) -> None:
        self.service, self.client, self.canary, self.settings = service, client, canary, settings

    async def ask(
        self, query: str, variables: dict[str, Any], as_user: int | None = None
    ) -> dict[str, Any]:
        headers = viewer_headers(self.settings, as_user) if as_user is not None else {}
        return await post_graphql(self.client, "/realms/alpha/graphql", query, variables, headers)

    async def members(self) -> list[dict[str, Any]]:
        answer = await self.ask(MEMBERS, {"id": self.canary.ids["Group"][1]}, 1)
        result: list[dict[str, Any]] = answer["data"]["group"]["memberships"]
        return result

    async def outbox(self) -> list[int | None]:
        async with self.service.sessions_of("alpha")() as session:
            rows = await session.scalars(
                select(models.IndexOutbox).where(models.IndexOutbox.full.is_(False))
            )
            return [row.user_id for row in rows]


@pytest.fixture
async def realm(tmp_path: Path) -> AsyncIterator[Realm]:
    settings = realm_settings(
        tmp_path, realm_ids="alpha,beta",
        realm_database_url=f"sqlite+aiosqlite:///{tmp_path / 'realm.sqlite3'}",
    )
    service = RealmSubgraph(settings)
    await service.start()
    async with service.sessions_of("alpha").begin() as session:
        canary = await seed_canary(session, "alpha")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.asgi_app()), base_url="http://realm"
    ) as client:
        yield Realm(service, client, canary, settings)
    await service.aclose()
