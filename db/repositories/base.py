"""What every repository shares."""

from typing import Any

from sqlalchemy import Update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


class Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def _compare_and_set(self, statement: Update) -> bool:
        """Run a guarded UPDATE; True when its WHERE still held and a row changed."""
        result: Any = await self.session.execute(statement)
        return bool(result.rowcount == 1)

    def _insert(self, table: Any) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that can take ON CONFLICT DO NOTHING on the current backend."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)
