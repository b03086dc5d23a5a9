"""Helpers of the many-realms tests: settings, viewers, GraphQL over an ASGI endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

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
