"""The dev sign-in page of the real all-in-one app (hub, realms, router: what `pek dev` serves):
it lists real people while nobody is signed in yet (names are for signed-in users), signing in
acts as the chosen user, and GraphiQL's default query answers anonymously without errors."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pek.roles import build_dev_app
from pek.router.graphiql import DEFAULT_QUERY
from tests.edge.test_metrics import _settings
from tests.processes import served


@pytest.fixture
async def dev_url(tmp_path: Path) -> AsyncIterator[str]:
    async with served(build_dev_app(_settings(tmp_path, dev=True)), lifespan="on") as url:
        yield url


async def test_the_sign_in_page_lists_people_before_anyone_signed_in(dev_url: str) -> None:
    async with httpx.AsyncClient(base_url=dev_url, timeout=30) as client:
        page = await client.get("/dev/sign-in")
        assert page.status_code == 200
        users = re.findall(r'value="(VXNlcj[^"]+)"', page.text)
        assert len(users) >= 10, page.text[:2000]
        assert "Sign in to see people" not in page.text
        signed = await client.post("/dev/sign-in", data={"user": users[3]},
                                   headers={"origin": dev_url})
        assert signed.status_code == 303, signed.text
        me = (await client.post("/graphql", json={"query": "{ me { id name } }"})).json()
        assert me["data"]["me"]["id"] == users[3] and me["data"]["me"]["name"]


async def test_graphiqls_default_query_answers_anonymously(dev_url: str) -> None:
    async with httpx.AsyncClient(base_url=dev_url, timeout=30) as client:
        body = (await client.post("/graphql", json={"query": DEFAULT_QUERY})).json()
    assert "errors" not in body, body["errors"]
    assert body["data"]["me"] is None and body["data"]["groups"]["edges"]
