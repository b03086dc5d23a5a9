"""The hub's tables: users with their profile, privacy switches, external accounts, realms.

Every table name starts with ``hub_`` so that the hub and a realm can migrate into one SQLite
file in all-in-one mode.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    Boolean,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy import false as sa_false
from sqlalchemy import true as sa_true
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Dormitory(enum.Enum):
    KARMAN = "KARMAN"
    TETENY = "TETENY"
    SCH = "SCH"
    BAROSS = "BAROSS"
    BERCSENYI = "BERCSENYI"
    VASARHELYI = "VASARHELYI"
    EXTERNAL = "EXTERNAL"
    UNKNOWN = "UNKNOWN"


class Gender(enum.Enum):
    FEMALE = "FEMALE"
    MALE = "MALE"
    OTHER = "OTHER"
    UNKNOWN = "UNKNOWN"


class StudentStatus(enum.Enum):
    ACTIVE = "ACTIVE"
    GRADUATED = "GRADUATED"
    OTHER = "OTHER"
    UNKNOWN = "UNKNOWN"


class PrivacyAttribute(enum.Enum):
    EMAIL = "EMAIL"
    CELL_PHONE = "CELL_PHONE"
    ROOM_NUMBER = "ROOM_NUMBER"
    HOME_ADDRESS = "HOME_ADDRESS"
    DATE_OF_BIRTH = "DATE_OF_BIRTH"
    GENDER = "GENDER"
    WEBPAGE = "WEBPAGE"


def _enum(kind: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings (no native PG enum types): adding a value is then no migration.
    return Enum(kind, name=name, native_enum=False, length=32, validate_strings=True)


class User(Base):
    """One person across the whole federation, with their profile."""

    __tablename__ = "hub_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The identity provider's subject (AuthSCH gives a UUID).
    subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    nickname: Mapped[str | None] = mapped_column(String(100))
    avatar_url: Mapped[str | None] = mapped_column(String(500))
    email: Mapped[str | None] = mapped_column(String(255))
    cell_phone: Mapped[str | None] = mapped_column(String(50))
    room_number: Mapped[str | None] = mapped_column(String(50))
    dormitory: Mapped[Dormitory] = mapped_column(
        _enum(Dormitory, "dormitory"), default=Dormitory.UNKNOWN
    )
    gender: Mapped[Gender] = mapped_column(_enum(Gender, "gender"), default=Gender.UNKNOWN)
    date_of_birth: Mapped[dt.date | None] = mapped_column(Date)
    home_address: Mapped[str | None] = mapped_column(String(500))
    webpage: Mapped[str | None] = mapped_column(String(500))
    student_status: Mapped[StudentStatus] = mapped_column(
        _enum(StudentStatus, "student_status"), default=StudentStatus.UNKNOWN
    )
    #: A top-level admin: every action in every realm, and the only one who grants policies.
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())
    #: Profile columns the user (or an editProfile grantee) set by hand, comma-separated: a
    #: sign-in no longer overwrites them from the provider's claims.
    edited_fields: Mapped[str] = mapped_column(String(500), default="", server_default="")
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class PrivacySetting(Base):
    """One switch of a user's privacy settings; a missing row means "hidden"."""

    __tablename__ = "hub_privacy_settings"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("hub_users.id", ondelete="CASCADE"), primary_key=True
    )
    attribute: Mapped[PrivacyAttribute] = mapped_column(
        _enum(PrivacyAttribute, "privacy_attribute"), primary_key=True
    )
    visible: Mapped[bool] = mapped_column(Boolean, default=False)


class ExternalAccount(Base):
    __tablename__ = "hub_external_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("hub_users.id", ondelete="CASCADE"), index=True
    )
    protocol: Mapped[str] = mapped_column(String(50))
    account_name: Mapped[str] = mapped_column(String(255))


class Realm(Base):
    """The realm registry: every realm the federation knows, the one source of truth.

    Public GraphQL shows id, name and description; routers read the rest (endpoint, timeout,
    enabled, order) from ``GET /internal/realms``.
    """

    __tablename__ = "hub_realms"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000))
    #: GraphQL endpoint of the realm (``http://.../realms/<id>/graphql`` or
    #: ``in-process://<id>``); None while unknown.
    url: Mapped[str | None] = mapped_column(String(500))
    #: How long (milliseconds) a router waits for this realm.
    timeout_ms: Mapped[int] = mapped_column(Integer, default=5000, server_default="5000")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default=sa_true())
    #: Display order (then id).
    position: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Version(Base):
    """A counter that grows on every change of what it names (``realms``,
    ``federation_index``), so that pollers can tell a change cheaply."""

    __tablename__ = "hub_versions"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class FederationIndexEntry(Base):
    """User ``user_id`` has at least one membership in realm ``realm_id``."""

    __tablename__ = "hub_federation_index"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(63), primary_key=True, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class IndexRealmState(Base):
    """How far the federation index of one realm is: its last message and last full resync."""

    __tablename__ = "hub_index_realms"

    realm_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    sequence: Mapped[int] = mapped_column(Integer)
    synced_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class IndexNonce(Base):
    """Nonces of signed index calls seen within the timestamp window (replay protection)."""

    __tablename__ = "hub_index_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class Identity(Base):
    """A user's account at an identity provider: (provider, subject) names one hub user.

    One person may sign in through several providers (realms may use their own); each
    provider's ``sub`` is unique only within that provider.
    """

    __tablename__ = "hub_identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    provider: Mapped[str] = mapped_column(String(100))
    subject: Mapped[str] = mapped_column(String(255))
    user_id: Mapped[int] = mapped_column(
        ForeignKey("hub_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class RefreshToken(Base):
    """One refresh token, stored as its SHA-256 only.

    Every use replaces it with a new one of the same ``family``; presenting a token already
    used revokes the whole family (a stolen copy and the original cannot both go on).
    """

    __tablename__ = "hub_refresh_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    family: Mapped[str] = mapped_column(String(64), index=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("hub_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: Set when the token was exchanged for a new one, or revoked by sign-out.
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PolicyStatement(Base):
    """A policy statement (:class:`pek.schema.policies.Statement`) with its grant record.

    Revoking keeps the row (``revoked_at``/``revoked_by``): the audit trail is never lost.
    """

    __tablename__ = "hub_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    #: Space-separated :class:`pek.schema.policies.Action` values.
    actions: Mapped[str] = mapped_column(String(500))
    grantee: Mapped[str] = mapped_column(String(32))
    grantee_user_id: Mapped[int | None] = mapped_column(Integer)
    grantee_role: Mapped[str | None] = mapped_column(String(32))
    #: None: every realm.
    realm_id: Mapped[str | None] = mapped_column(String(63), index=True)
    group_id: Mapped[int | None] = mapped_column(Integer)
    subtree: Mapped[bool] = mapped_column(Boolean, default=False)
    target_user_id: Mapped[int | None] = mapped_column(Integer)
    #: Who granted it (None: the system's defaults).
    granted_by: Mapped[int | None] = mapped_column(Integer)
    granted_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[int | None] = mapped_column(Integer)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PolicyEvent(Base):
    """The audit trail: every grant and revocation, who did it and when."""

    __tablename__ = "hub_policy_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    policy_id: Mapped[int] = mapped_column(Integer, index=True)
    #: GRANT or REVOKE.
    kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    #: The statement as JSON at that moment, and the reason given (if any).
    detail: Mapped[str] = mapped_column(Text)


class IndexGroupEntry(Base):
    """User ``user_id`` is an active member of group ``group_id`` of realm ``realm_id``:
    published by the realms with the federation index, so that the hub can decide
    "members of a shared group" profile statements without asking the realms."""

    __tablename__ = "hub_index_groups"

    user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    realm_id: Mapped[str] = mapped_column(String(63), primary_key=True)
    group_id: Mapped[int] = mapped_column(Integer, primary_key=True, index=True)
