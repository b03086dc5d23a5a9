"""Every sign-in creates or updates the hub user and profile from the provider's claims."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pek.hub import models

_USERNAME_CHARS = re.compile(r"[^a-z0-9._-]+")


def _text(claims: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = claims.get(name)
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:limit]


def _birthdate(claims: Mapping[str, Any]) -> dt.date | None:
    value = claims.get("birthdate")
    if not isinstance(value, str):
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        # OIDC allows "0000-MM-DD" (year withheld) and bare years: not a date we can store.
        return None


def _address(claims: Mapping[str, Any]) -> str | None:
    value = claims.get("address")
    if isinstance(value, dict):
        value = value.get("formatted") or ", ".join(
            str(value[k]) for k in ("street_address", "postal_code", "locality", "country")
            if value.get(k)
        )
    return value.strip()[:500] if isinstance(value, str) and value.strip() else None


def _names(claims: Mapping[str, Any]) -> tuple[str, str]:
    """(first name, last name): the given/family claims, else the display name as given."""
    given = _text(claims, "given_name", 100)
    family = _text(claims, "family_name", 100)
    if given or family:
        return given or "", family or ""
    name = _text(claims, "name", 100)
    return name or "", ""


def _gender(claims: Mapping[str, Any]) -> models.Gender | None:
    value = claims.get("gender")
    if not isinstance(value, str):
        return None
    return {"female": models.Gender.FEMALE, "male": models.Gender.MALE}.get(
        value.lower(), models.Gender.OTHER
    )


def profile_from_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The profile columns the claims speak of (absent claims leave a column unchanged)."""
    first, last = _names(claims)
    values: dict[str, Any] = {
        "nickname": _text(claims, "nickname", 100),
        "email": _text(claims, "email", 255),
        "cell_phone": _text(claims, "phone_number", 50),
        "date_of_birth": _birthdate(claims),
        "home_address": _address(claims),
        "webpage": _text(claims, "website", 500),
        "avatar_url": _text(claims, "picture", 500),
        "gender": _gender(claims),
    }
    if first or last:
        values["first_name"], values["last_name"] = first, last
    return {k: v for k, v in values.items() if v is not None}


async def _free_username(session: AsyncSession, claims: Mapping[str, Any]) -> str:
    email = _text(claims, "email", 255)
    wanted = (
        _text(claims, "preferred_username", 64)
        or _text(claims, "nickname", 64)
        or (email.split("@", 1)[0] if email else None)
        or "user"
    )
    base = _USERNAME_CHARS.sub("-", wanted.lower()).strip("-")[:56] or "user"
    candidate, n = base, 1
    while (
        await session.scalar(select(models.User.id).where(models.User.username == candidate))
    ) is not None:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


async def upsert_user(
    session: AsyncSession, provider: str, claims: Mapping[str, Any], *, default_provider: bool
) -> models.User:
    """The hub user of (``provider``, ``claims["sub"]``), created or updated from ``claims``.

    The default provider's subject is also the user's ``subject`` (AuthSCH's UUID), so users
    known by it before (imported ones) are found and linked on their first sign-in.
    """
    subject = str(claims["sub"])
    now = dt.datetime.now(dt.UTC)
    identity = await session.scalar(
        select(models.Identity).where(
            models.Identity.provider == provider, models.Identity.subject == subject
        )
    )
    user: models.User | None = None
    if identity is not None:
        user = await session.get(models.User, identity.user_id)
        if user is None:  # its user is gone (a database without cascading deletes)
            await session.delete(identity)
            await session.flush()
            identity = None
    if user is None and default_provider:
        user = await session.scalar(select(models.User).where(models.User.subject == subject))
    profile = profile_from_claims(claims)
    if user is None:
        first, last = profile.pop("first_name", ""), profile.pop("last_name", "")
        user = models.User(
            subject=subject if default_provider else None,
            username=await _free_username(session, claims),
            first_name=first,
            last_name=last,
            **profile,
        )
        session.add(user)
        await session.flush()
    else:
        edited = set(filter(None, user.edited_fields.split(",")))
        for column, value in profile.items():
            if column not in edited:  # what the user set by hand wins over the claims
                setattr(user, column, value)
    if identity is None:
        identity = models.Identity(provider=provider, subject=subject, user_id=user.id)
        session.add(identity)
    identity.last_login_at = now
    await session.flush()
    return user
