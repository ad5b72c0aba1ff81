"""Connecting to PostgreSQL: the server DATABASE_URL names, or an embedded one (pgserver) that we
start and stop ourselves. Migrations are numbered SQL files applied under an advisory lock, so two
daemons starting at once do not race."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg

log = logging.getLogger(__name__)
MIGRATION_LOCK = 7_345_345_001  # an arbitrary constant: the advisory lock id for migrations


def migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("supervisor.storage") / "sql" / "migrations"
    out = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".sql"):
            out.append(
                (int(entry.name.split("_", 1)[0]), entry.name, entry.read_text(encoding="utf-8"))
            )
    return out


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply the migrations not applied yet; returns their names."""
    applied: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in migrations():
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
            )
            applied.append(name)
    return applied


class EmbeddedPostgres:
    """pgserver's PostgreSQL in a data directory of ours; stopped when we stop."""

    def __init__(self, datadir: Path) -> None:
        self.datadir = datadir
        self._server: Any = None

    def start(self) -> str:
        import warnings

        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI) and falls back to /tmp
            warnings.simplefilter("ignore")
            import pgserver  # imported here: only the embedded mode needs it

        self.datadir.mkdir(parents=True, exist_ok=True)
        self._server = pgserver.get_server(str(self.datadir), cleanup_mode="stop")
        uri = self._server.get_uri()
        log.info("embedded PostgreSQL started", extra={"datadir": str(self.datadir)})
        return uri

    def stop(self) -> None:
        if self._server is not None:
            try:
                self._server.cleanup()
            finally:
                self._server = None
                log.info("embedded PostgreSQL stopped")


async def _init_connection(conn: asyncpg.Connection) -> None:
    from supervisor.storage.jsoncodec import dumps, loads  # once per connection, not per value

    await conn.set_type_codec("jsonb", encoder=dumps, decoder=loads, schema="pg_catalog")


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection
    )
    assert pool is not None
    return pool


@asynccontextmanager
async def database(dsn: str | None, datadir: Path, *, max_size: int = 10):
    """Yields a migrated pool; starts (and later stops) the embedded server when dsn is None."""
    embedded = None
    if not dsn:
        embedded = EmbeddedPostgres(datadir)
        dsn = embedded.start()
    try:
        pool = await create_pool(dsn, max_size=max_size)
        try:
            async with pool.acquire() as conn:
                applied = await migrate(conn)
            if applied:
                log.info("migrations applied", extra={"migrations": applied})
            yield pool
        finally:
            await pool.close()
    finally:
        if embedded is not None:
            embedded.stop()
