"""What every repository shares."""

from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Update, literal
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from db.models import MAX_ID


def is_id(value: int) -> bool:
    """Whether a row could have this id; anything else is looked up as missing, never queried."""
    return 1 <= value <= MAX_ID


def in_state(column: InstrumentedAttribute[Any], state: StrEnum) -> ColumnElement[bool]:
    """`column = 'state'` with the state written into the SQL text.

    A partial index WHERE status = 'queued' serves only queries that say so literally:
    SQLite never matches a bound parameter, nor does PostgreSQL in a generic plan.
    """
    return column == literal(state, type_=column.type, literal_execute=True)


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
