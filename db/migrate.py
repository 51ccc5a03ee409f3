"""Run Alembic migrations from code (the app migrates on start; tests migrate their databases)."""

import asyncio
from enum import StrEnum
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

ALEMBIC_INI = Path(__file__).resolve().parent.parent / "alembic.ini"


class SchemaState(StrEnum):
    CURRENT = "current"
    BEHIND = "behind"  # migrations to apply
    NEWER = "newer"  # stamped by a release that knows migrations this one does not


def alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.attributes["url"] = url
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Alembic drives its own event loop, so it runs in a worker thread."""
    await asyncio.to_thread(command.upgrade, alembic_config(url), revision)


async def schema_state(engine: AsyncEngine) -> tuple[SchemaState, str | None]:
    """How the database's schema compares with this release, and its revision."""
    script = ScriptDirectory.from_config(Config(str(ALEMBIC_INI)))
    known = {revision.revision for revision in script.walk_revisions()}

    def look(connection: Connection) -> tuple[SchemaState, str | None]:
        current = MigrationContext.configure(connection).get_current_revision()
        if current is not None and current not in known:
            return SchemaState.NEWER, current
        if current != script.get_current_head():
            return SchemaState.BEHIND, current
        return SchemaState.CURRENT, current

    async with engine.connect() as connection:
        return await connection.run_sync(look)
