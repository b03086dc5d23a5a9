"""Editing a profile and its privacy settings at the hub: who may, clear errors, nothing
changed on error, and hand-set fields kept over the identity provider's claims."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from pek.hub import models
from pek.hub.auth.users import upsert_user
from pek.hub.demo import DEMO_USER_COUNT
from pek.hub.service import HubSubgraph
from pek.schema import ids
from tests.subgraphs.conftest import error_codes, run

UPDATE = """mutation($input: ProfileInput!, $user: ID) { updateProfile(input: $input,
    userId: $user) { id nickname fullProfile { email cellPhone webpage dormitory
    externalAccounts { protocol accountName } } } }"""
PRIVACY = """mutation($settings: [PrivacySettingInput!]!, $user: ID) {
    setPrivacy(settings: $settings, userId: $user) { privacySettings { attribute visible } } }"""
ME, OTHER = 5, 6
ADMIN = DEMO_USER_COUNT  # the demo's last user is a top-level admin


async def _row(hub: HubSubgraph, user_id: int) -> tuple[Any, ...]:
    async with hub.sessionmaker() as session:
        user = await session.get(models.User, user_id)
        assert user is not None
        accounts = list(await session.scalars(
            select(models.ExternalAccount.account_name)
            .where(models.ExternalAccount.user_id == user_id)))
        switches = list(await session.scalars(
            select(models.PrivacySetting.visible).where(models.PrivacySetting.user_id == user_id)))
        return (user.nickname, user.email, user.cell_phone, user.webpage, user.dormitory,
                user.edited_fields, accounts, switches)


async def _refused(hub: HubSubgraph, query: str, variables: dict[str, Any],
                   viewer: str | None, code: str) -> str:
    before = await _row(hub, ME)
    answer = await run(hub, query, variables, viewer=viewer)
    assert error_codes(answer) == [code], answer
    assert await _row(hub, ME) == before
    message: str = answer["errors"][0]["message"]
    return message


async def test_a_user_edits_their_own_profile(hub: HubSubgraph) -> None:
    me = str(ME)
    await _refused(hub, UPDATE, {"input": {"nickname": "Anon"}}, None, "UNAUTHENTICATED")
    for change, words in (
        ({"email": "not-an-address"}, "valid e-mail"),
        ({"webpage": "javascript:alert(1)"}, "http(s) URL"),
        ({"nickname": "x" * 101}, "at most 100"),
        ({"dateOfBirth": "2999-01-01"}, "dateOfBirth"),
        ({}, "Nothing to change"),
        ({"externalAccounts": [{"protocol": "github", "accountName": "a"}] * 2}, "twice"),
    ):
        assert words in await _refused(hub, UPDATE, {"input": change}, me, "BAD_USER_INPUT")
    answer = await run(hub, UPDATE, {"input": {
        "nickname": " Maci ", "cellPhone": "+36 30 123 4567", "webpage": "https://maci.example",
        "dormitory": "KARMAN",
        "externalAccounts": [{"protocol": "github", "accountName": "maci"}]}}, viewer=me)
    assert "errors" not in answer, answer
    profile = answer["data"]["updateProfile"]
    assert profile["nickname"] == "Maci"
    assert profile["fullProfile"]["cellPhone"] == "+36 30 123 4567"
    assert profile["fullProfile"]["dormitory"] == "KARMAN"
    assert profile["fullProfile"]["externalAccounts"] == [
        {"protocol": "github", "accountName": "maci"}]
    # An empty string clears a field.
    cleared = await run(hub, UPDATE, {"input": {"webpage": ""}}, viewer=me)
    assert cleared["data"]["updateProfile"]["fullProfile"]["webpage"] is None


async def test_hand_set_fields_win_over_the_providers_claims(hub: HubSubgraph) -> None:
    async with hub.sessionmaker.begin() as session:
        session.add(models.Identity(provider="authsch", subject="sub-5", user_id=ME))
    await run(hub, UPDATE, {"input": {"nickname": "Maci"}}, viewer=str(ME))
    async with hub.sessionmaker.begin() as session:
        user = await upsert_user(session, "authsch", {
            "sub": "sub-5", "nickname": "From the provider", "email": "new@example.org",
        }, default_provider=True)
        assert user.id == ME
    nickname, email, *_ = await _row(hub, ME)
    assert (nickname, email) == ("Maci", "new@example.org")


async def test_someone_elses_profile_needs_edit_profile(hub: HubSubgraph) -> None:
    other = {"input": {"nickname": "Hacked"}, "user": ids.encode("User", ME)}
    await _refused(hub, UPDATE, other, str(OTHER), "FORBIDDEN")
    await _refused(hub, PRIVACY, {"settings": [{"attribute": "EMAIL", "visible": True}],
                                  "user": ids.encode("User", ME)}, str(OTHER), "FORBIDDEN")
    by_admin = await run(hub, UPDATE, {**other, "input": {"nickname": "Fixed by admin"}},
                         viewer=str(ADMIN))
    assert by_admin["data"]["updateProfile"]["nickname"] == "Fixed by admin"


async def test_privacy_switches(hub: HubSubgraph) -> None:
    me = str(ME)
    assert "twice" in await _refused(hub, PRIVACY, {"settings": [
        {"attribute": "EMAIL", "visible": True}, {"attribute": "EMAIL", "visible": False}]},
        me, "BAD_USER_INPUT")
    await _refused(hub, PRIVACY, {"settings": []}, me, "BAD_USER_INPUT")
    for visible in (True, False):
        answer = await run(hub, PRIVACY, {"settings": [
            {"attribute": "EMAIL", "visible": visible},
            {"attribute": "ROOM_NUMBER", "visible": not visible}]}, viewer=me)
        switches = {s["attribute"]: s["visible"]
                    for s in answer["data"]["setPrivacy"]["privacySettings"]}
        assert (switches["EMAIL"], switches["ROOM_NUMBER"]) == (visible, not visible)
