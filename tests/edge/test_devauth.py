"""Dev sign-in: the signed cookie, the pages, and how the edge turns the cookie into a user."""

from __future__ import annotations

import httpx
import jwt
import pytest

from pek.router.devauth import COOKIE_NAME, sign_user, verify_cookie
from pek.settings import Settings

from .conftest import DEMO_USERS, AppFactory, SchemaExecutor, client_for

ANNA, BENCE = DEMO_USERS[0], DEMO_USERS[1]
ME = {"query": "{ me { name } }"}


def test_cookie_round_trip_and_tampering() -> None:
    value = sign_user(ANNA["id"], "k1")
    assert verify_cookie(value, "k1") == ANNA["id"]
    assert verify_cookie(value, "other secret") is None
    encoded, _, mac = value.partition(".")
    forged = sign_user(BENCE["id"], "k1").partition(".")[0] + "." + mac
    assert verify_cookie(forged, "k1") is None
    assert verify_cookie(encoded + "." + mac[:-1] + ("0" if mac[-1] != "0" else "1"), "k1") is None
    for junk in ("", ".", "abc", "!!!." + mac, encoded):
        assert verify_cookie(junk, "k1") is None


async def test_sign_in_page_lists_users_from_the_gateway(
    dev_client: httpx.AsyncClient, executor: SchemaExecutor
) -> None:
    response = await dev_client.get("/dev/sign-in")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    for user in DEMO_USERS:
        assert user["name"] in response.text
        assert f'value="{user["id"]}"' in response.text
    assert "users(first: 50)" in executor.calls[-1].query
    assert 'type="search"' in response.text


async def test_sign_in_page_search_filters(dev_client: httpx.AsyncClient) -> None:
    response = await dev_client.get("/dev/sign-in", params={"q": "panni"})
    assert ANNA["name"] in response.text
    assert BENCE["name"] not in response.text


async def test_sign_in_sets_a_signed_cookie_that_acts_as_the_user(
    dev_client: httpx.AsyncClient, executor: SchemaExecutor
) -> None:
    before = await dev_client.post("/graphql", json=ME)
    assert before.json() == {"data": {"me": None}}

    response = await dev_client.post("/dev/sign-in", data={"user": ANNA["id"]})
    assert response.status_code == 303
    assert response.headers["location"] == "/graphql"
    set_cookie = response.headers["set-cookie"].lower()
    assert set_cookie.startswith(COOKIE_NAME + "=")
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie

    after = await dev_client.post("/graphql", json=ME)
    assert after.json() == {"data": {"me": {"name": ANNA["name"]}}}
    # What travels is a real hub token for Anna, never a header naming her.
    forwarded = executor.calls[-1].headers
    assert "x-pek-dev-user" not in forwarded
    token = forwarded["authorization"].removeprefix("Bearer ")
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == ANNA["id"]


async def test_sign_in_as_an_unknown_user_is_refused(dev_client: httpx.AsyncClient) -> None:
    response = await dev_client.post("/dev/sign-in", json={"user": "VXNlcjo6OTk5"})
    assert response.status_code == 400
    assert "No such user" in response.json()["errors"][0]["message"]
    assert COOKIE_NAME not in dev_client.cookies


async def test_sign_in_accepts_json(dev_client: httpx.AsyncClient) -> None:
    response = await dev_client.post("/dev/sign-in", json={"user": BENCE["id"]})
    assert response.status_code == 303
    after = await dev_client.post("/graphql", json=ME)
    assert after.json() == {"data": {"me": {"name": BENCE["name"]}}}


async def test_explicit_header_wins_over_the_cookie(dev_client: httpx.AsyncClient) -> None:
    await dev_client.post("/dev/sign-in", json={"user": ANNA["id"]})
    response = await dev_client.post("/graphql", json=ME, headers={"x-pek-dev-user": BENCE["id"]})
    assert response.json() == {"data": {"me": {"name": BENCE["name"]}}}


async def test_tampered_cookie_is_ignored(dev_client: httpx.AsyncClient) -> None:
    signed = sign_user(ANNA["id"], Settings().secret_key)
    forged = sign_user(ANNA["id"], "not the router's secret")
    dev_client.cookies.set(COOKIE_NAME, forged)
    assert (await dev_client.post("/graphql", json=ME)).json() == {"data": {"me": None}}
    dev_client.cookies.set(COOKIE_NAME, signed)
    assert (await dev_client.post("/graphql", json=ME)).json() == {
        "data": {"me": {"name": ANNA["name"]}}
    }


async def test_sign_out_clears_the_cookie(dev_client: httpx.AsyncClient) -> None:
    await dev_client.post("/dev/sign-in", json={"user": ANNA["id"]})
    response = await dev_client.post("/dev/sign-out")
    assert response.status_code == 303
    assert COOKIE_NAME not in dev_client.cookies
    assert (await dev_client.post("/graphql", json=ME)).json() == {"data": {"me": None}}


@pytest.mark.parametrize(
    ("kwargs", "status", "expected"),
    [
        ({"json": {"user": "not-an-id"}}, 400, "not a User id"),
        ({"json": {"user": "R3JvdXA6a2lyZGV2OjQy"}}, 400, "expected an ID of a User"),
        ({"json": {}}, 400, "Missing 'user'"),
        ({"json": ["x"]}, 400, "Missing 'user'"),
        ({"content": b"{oops", "headers": {"content-type": "application/json"}}, 400, "JSON"),
        ({"content": b"user=x", "headers": {"content-type": "text/plain"}}, 415, "form field"),
        ({"data": {"user": ""}}, 400, "Missing 'user'"),
    ],
)
async def test_bad_sign_in_is_a_clear_client_error(
    dev_client: httpx.AsyncClient, kwargs: dict[str, object], status: int, expected: str
) -> None:
    response = await dev_client.post("/dev/sign-in", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status
    assert expected in response.json()["errors"][0]["message"]
    assert COOKIE_NAME not in dev_client.cookies


async def test_cross_site_sign_in_is_refused(dev_client: httpx.AsyncClient) -> None:
    response = await dev_client.post(
        "/dev/sign-in", data={"user": ANNA["id"]}, headers={"origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert COOKIE_NAME not in dev_client.cookies
    same = await dev_client.post(
        "/dev/sign-in", data={"user": ANNA["id"]}, headers={"origin": "http://testserver"}
    )
    assert same.status_code == 303


async def test_outside_dev_mode_routes_are_404_and_cookie_ignored(
    make_app: AppFactory, executor: SchemaExecutor
) -> None:
    async with client_for(make_app(settings=Settings(dev=False))) as client:
        for response in (
            await client.get("/dev/sign-in"),
            await client.post("/dev/sign-in", json={"user": ANNA["id"]}),
            await client.post("/dev/sign-out"),
        ):
            assert response.status_code == 404
            assert "development mode" in response.json()["errors"][0]["message"]
        assert COOKIE_NAME not in client.cookies
        client.cookies.set(COOKIE_NAME, sign_user(ANNA["id"], Settings().secret_key))
        response = await client.post("/graphql", json=ME)
    assert response.json() == {"data": {"me": None}}
    assert "x-pek-dev-user" not in executor.calls[-1].headers
