"""Engines and Alembic migrations for the subgraphs' databases.

Both subgraphs use SQLAlchemy's asyncio engines (aiosqlite for ``sqlite+aiosqlite://``, asyncpg
for ``postgresql+asyncpg://``). Migrations run through Alembic's programmatic API on a sync
connection borrowed from the async engine (``run_sync``), each subgraph with its own script
directory and its own version table, so hub and realm can share one SQLite file.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import ColumnElement, Connection, String, event, or_, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


class unicode_lower(FunctionElement[str]):
    """``lower()`` that folds non-ASCII letters too (SQLite's built-in one folds only ASCII)."""

    type = String()
    inherit_cache = True


@compiles(unicode_lower)
def _lower_default(element: unicode_lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(unicode_lower, "sqlite")
def _lower_sqlite(element: unicode_lower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"pek_lower({compiler.process(element.clauses, **kw)})"


class codepoint_order(FunctionElement[str]):
    """A column sorted by Unicode code point, as Python sorts strings, on every database.

    SQLite compares UTF-8 bytes (which is code point order) already; PostgreSQL sorts by its
    locale unless told ``COLLATE "C"``. The router merges realms' lists in Python's order, so
    each realm must sort exactly that way.
    """

    type = String()
    inherit_cache = True


@compiles(codepoint_order)
def _codepoint_default(element: codepoint_order, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(codepoint_order, "postgresql")
def _codepoint_postgresql(element: codepoint_order, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


def _python_lower(value: str | None) -> str | None:
    return value.lower() if isinstance(value, str) else value


def contains_words(
    columns: tuple[ColumnElement[Any] | InstrumentedAttribute[Any], ...], search: str
) -> list[ColumnElement[bool]]:
    """Criteria: every word of ``search`` occurs, case-insensitively, in one of ``columns``."""
    criteria: list[ColumnElement[bool]] = []
    for word in search.split():
        escaped = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        criteria.append(
            or_(*(unicode_lower(column).like(pattern, escape="\\") for column in columns))
        )
    return criteria


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url`` with settings that suit a subgraph."""
    if url.startswith("sqlite"):
        # Several engines (hub, realm) may write one file in all-in-one mode: wait, don't fail.
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            dbapi_connection.create_function("pek_lower", 1, _python_lower, deterministic=True)

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


async def upgrade_to_head(engine: AsyncEngine, script_location: str, version_table: str) -> None:
    """Run the Alembic migrations in ``script_location`` up to head, in one transaction.

    On PostgreSQL an advisory lock serialises concurrent start-ups (several realm processes
    sharing one database would otherwise race to create the same tables).
    """
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            key = zlib.crc32(version_table.encode())
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        await conn.run_sync(_upgrade_sync, script_location, version_table)


def _upgrade_sync(connection: Connection, script_location: str, version_table: str) -> None:
    config = Config()
    config.set_main_option("script_location", script_location)
    config.attributes["connection"] = connection
    config.attributes["version_table"] = version_table
    # "heads": helpers add migrations in parallel branches off one parent; apply them all.
    command.upgrade(config, "heads")


async def database_answers(engine: AsyncEngine, within: float = 3.0) -> bool:
    """True when ``SELECT 1`` succeeds within ``within`` seconds."""
    async def probe() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(probe(), within)
    except Exception:  # any failure means "not ready"; the reason is not the caller's business
        return False
    return True
