"""Editing a profile and its privacy settings (hub mutations).

The user edits their own profile; anyone else needs an ``editProfile`` statement that covers
that user (top-level admins have every statement). Names come from the identity provider and
are not edited here. A column set by hand is remembered (``User.edited_fields``): later sign-ins
no longer overwrite it from the provider's claims. Privacy switches are the user's own (and an
editProfile grantee's).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import strawberry
from sqlalchemy import delete, select

from pek.hub import models
from pek.hub.loaders import HubLoaders
from pek.hub.schema import HubInfo, User
from pek.schema.context import ClientError, decode_id
from pek.schema.policies import Action

#: The most external accounts a profile lists.
MAX_EXTERNAL_ACCOUNTS = 20
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://[^\s]+$")


@strawberry.input(description="An account elsewhere (protocol such as `github`, `matrix`).")
class ExternalAccountInput:
    protocol: str
    account_name: str


@strawberry.input(
    description="Profile fields to change; a field left out stays as it is, an empty string "
    "clears a text field. Names come from the identity provider."
)
class ProfileInput:
    nickname: str | None = None
    email: str | None = None
    cell_phone: str | None = None
    room_number: str | None = None
    dormitory: models.Dormitory | None = None
    gender: models.Gender | None = None
    date_of_birth: dt.date | None = None
    home_address: str | None = None
    webpage: str | None = None
    avatar_url: str | None = None
    external_accounts: list[ExternalAccountInput] | None = strawberry.field(
        default=None, description="Replaces the whole list."
    )


@strawberry.input(description="One privacy switch: whether the attribute is shown.")
class PrivacySettingInput:
    attribute: models.PrivacyAttribute
    visible: bool


#: column -> (GraphQL name, longest length, pattern it must match or None)
_TEXT_FIELDS: dict[str, tuple[str, int, re.Pattern[str] | None]] = {
    "nickname": ("nickname", 100, None),
    "email": ("email", 255, _EMAIL),
    "cell_phone": ("cellPhone", 50, None),
    "room_number": ("roomNumber", 50, None),
    "home_address": ("homeAddress", 500, None),
    "webpage": ("webpage", 500, _URL),
    "avatar_url": ("avatarUrl", 500, _URL),
}


def _changes(profile: ProfileInput) -> dict[str, Any]:
    """The column values ``profile`` asks for, checked (raises ClientError)."""
    changes: dict[str, Any] = {}
    for column, (name, limit, pattern) in _TEXT_FIELDS.items():
        value = getattr(profile, column)
        if value is None:
            continue
        value = value.strip()
        if len(value) > limit:
            raise ClientError(f"`{name}` must be at most {limit} characters")
        if value and pattern is not None and not pattern.match(value):
            kind = "e-mail address" if pattern is _EMAIL else "http(s) URL"
            raise ClientError(f"`{name}` is not a valid {kind}")
        changes[column] = value or None
    if profile.dormitory is not None:
        changes["dormitory"] = profile.dormitory
    if profile.gender is not None:
        changes["gender"] = profile.gender
    if profile.date_of_birth is not None:
        if not dt.date(1900, 1, 1) <= profile.date_of_birth <= dt.date.today():
            raise ClientError("`dateOfBirth` must be between 1900-01-01 and today")
        changes["date_of_birth"] = profile.date_of_birth
    return changes


def _accounts(accounts: list[ExternalAccountInput]) -> list[tuple[str, str]]:
    if len(accounts) > MAX_EXTERNAL_ACCOUNTS:
        raise ClientError(f"At most {MAX_EXTERNAL_ACCOUNTS} external accounts")
    checked = []
    for account in accounts:
        protocol, name = account.protocol.strip(), account.account_name.strip()
        if not 1 <= len(protocol) <= 50 or not 1 <= len(name) <= 255:
            raise ClientError("An external account needs a protocol (1-50 characters) and an "
                              "account name (1-255 characters)")
        checked.append((protocol, name))
    if len(set(checked)) != len(checked):
        raise ClientError("An external account is listed twice")
    return checked


async def _target(info: HubInfo, user_id: strawberry.ID | None) -> int:
    """The user to edit: the viewer, or ``user_id`` when an editProfile statement allows."""
    viewer = info.context.viewer_id
    if viewer is None:
        raise ClientError("Sign in first", code="UNAUTHENTICATED")
    target = viewer if user_id is None else decode_id(user_id, "User")
    if target != viewer and not await info.context.profile_grant(Action.EDIT_PROFILE, target):
        raise ClientError("You may edit only your own profile", code="FORBIDDEN")
    return target


def _fresh_loaders(info: HubInfo) -> None:
    """After a write, the answer is read with new loaders (nothing cached from before)."""
    info.context.loaders = HubLoaders.create(info.context.db(), info.context.viewer_id)


@strawberry.type
class ProfileMutation:
    @strawberry.mutation(
        description="Change the profile of the signed-in user, or of `userId` (editProfile: "
        "top-level admins by default). Fields set here are kept over the identity provider's "
        "claims at later sign-ins."
    )
    async def update_profile(
        self, info: HubInfo, input: ProfileInput, user_id: strawberry.ID | None = None
    ) -> User:
        target = await _target(info, user_id)
        changes = _changes(input)
        given = input.external_accounts
        accounts = _accounts(given) if given is not None else None
        if not changes and accounts is None:
            raise ClientError("Nothing to change: give at least one field")
        async with info.context.db().begin() as session:
            row = await session.get(models.User, target)
            if row is None:
                raise ClientError("No user with this ID")
            for column, value in changes.items():
                setattr(row, column, value)
            edited = set(filter(None, row.edited_fields.split(","))) | set(changes)
            row.edited_fields = ",".join(sorted(edited))
            if accounts is not None:
                E = models.ExternalAccount
                await session.execute(delete(E).where(E.user_id == target))
                session.add_all(E(user_id=target, protocol=p, account_name=n)
                                for p, n in accounts)
        _fresh_loaders(info)
        return User.from_row(row)

    @strawberry.mutation(
        description="Show or hide attributes of the full profile (the user's own switches; "
        "also an editProfile grantee's). Attributes not given stay as they are."
    )
    async def set_privacy(
        self, info: HubInfo, settings: list[PrivacySettingInput],
        user_id: strawberry.ID | None = None,
    ) -> User:
        target = await _target(info, user_id)
        if not settings:
            raise ClientError("Give at least one setting")
        wanted = {s.attribute: s.visible for s in settings}
        if len(wanted) != len(settings):
            raise ClientError("An attribute is given twice")
        async with info.context.db().begin() as session:
            row = await session.get(models.User, target)
            if row is None:
                raise ClientError("No user with this ID")
            P = models.PrivacySetting
            existing = {
                p.attribute: p for p in await session.scalars(select(P).where(P.user_id == target))
            }
            for attribute, visible in wanted.items():
                if attribute in existing:
                    existing[attribute].visible = visible
                else:
                    session.add(P(user_id=target, attribute=attribute, visible=visible))
        _fresh_loaders(info)
        return User.from_row(row)
