"""The hub's tables: users with their profile, privacy switches, external accounts, realms.

Every table name starts with ``hub_`` so that the hub and a realm can migrate into one SQLite
file in all-in-one mode.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, Date, DateTime, Enum, ForeignKey, Integer, String, func
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
    """The realm registry: every realm the federation knows."""

    __tablename__ = "hub_realms"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(String(2000))
    url: Mapped[str | None] = mapped_column(String(500))
