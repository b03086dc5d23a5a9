"""Fixtures shared by every test: real PostgreSQL and Redis (a missing service fails the test)."""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    if not _port_open("127.0.0.1", 5432):
        pytest.fail("PostgreSQL must answer on 127.0.0.1:5432 (see .ci/run for how it is started)")


def require_redis() -> None:
    if not _port_open("127.0.0.1", 6379):
        pytest.fail("Redis must answer on 127.0.0.1:6379 (see .ci/run for how it is started)")


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def create_database(prefix: str = "pek_test") -> str:
    """Create a fresh PostgreSQL database; return its name."""
    import asyncpg

    require_postgres()
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def postgres_database() -> AsyncIterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; yields its asyncpg SQLAlchemy URL."""
    name = await create_database()
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        await drop_database(name)


@pytest.fixture
def redis_url() -> Iterator[str]:
    require_redis()
    yield REDIS_URL
