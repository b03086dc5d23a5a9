"""The body shared by the hub's and the realm's Alembic ``env.py``.

``start()`` hands Alembic a live sync connection in ``config.attributes`` (see
:func:`pek.schema.database.upgrade_to_head`). Run from the ``alembic`` command line instead,
the URL comes from ``-x url=...`` and an async engine is created here.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, MetaData

from pek.schema.database import create_engine


def run(target_metadata: MetaData, default_version_table: str) -> None:
    """Configure Alembic's context and run the migrations (online mode only)."""
    config = context.config
    version_table = config.attributes.get("version_table", default_version_table)
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection, target_metadata, version_table)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give the database URL: alembic -x url=sqlite+aiosqlite:///file ...")

    async def online() -> None:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(_run_on, target_metadata, version_table)
        await engine.dispose()

    asyncio.run(online())


def _run_on(connection: Connection, target_metadata: MetaData, version_table: str) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=version_table,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
