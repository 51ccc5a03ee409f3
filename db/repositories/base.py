"""What every repository shares."""

import hashlib
from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Protocol, TypeVar, cast

from sqlalchemy import ColumnElement, Table, Update, inspect, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm.util import identity_key

from db.models import MAX_ID, Base


def digest(token: str) -> str:
    """How a secret token is stored and looked up: its SHA-256, in hex. A lone surrogate
    (which no token we made holds) is hashed as it is, not an error."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def table(model: type[Base]) -> Table:
    """The model's table, for Core statements: they skip the ORM's work for each row."""
    return cast(Table, model.__table__)


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


Row = TypeVar("Row", bound=_HasId)


def is_id(value: int) -> bool:
    """Whether a row could have this id; anything else is looked up as missing, never queried."""
    return 1 <= value <= MAX_ID


def in_state(column: InstrumentedAttribute[Any], state: StrEnum) -> ColumnElement[bool]:
    """`column = 'state'` with the state written into the SQL text.

    A partial index WHERE status = 'queued' serves only queries that say so literally:
    SQLite never matches a bound parameter, nor does PostgreSQL in a generic plan.
    """
    return column == literal(state, type_=column.type, literal_execute=True)


def in_states(column: InstrumentedAttribute[Any], *states: StrEnum) -> ColumnElement[bool]:
    """`column IN ('a', 'b')`, written into the SQL text as `in_state` does, to match a
    partial index with that very condition."""
    return column.in_([literal(s, type_=column.type, literal_execute=True) for s in states])


class Repository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name

    async def _by_ids(self, model: type[Row], ids: Iterable[int]) -> dict[int, Row]:
        """Rows by id: those this transaction already holds (as it last read or wrote them)
        without asking again; the others in one query."""
        wanted = {i for i in ids if is_id(i)}
        found: dict[int, Row] = {}
        for row_id in wanted:
            row = self.session.identity_map.get(identity_key(model, row_id))
            if row is not None and not inspect(row).unloaded:  # all loaded: no lazy load
                found[row_id] = row
        missing = wanted - found.keys()
        if missing:
            id_column = inspect(model).primary_key[0]
            rows = await self.session.scalars(select(model).where(id_column.in_(missing)))
            found.update((row.id, row) for row in rows)
        return found

    async def _compare_and_set(self, statement: Update) -> bool:
        """Run a guarded UPDATE; True when its WHERE still held and a row changed."""
        result: Any = await self.session.execute(statement)
        return bool(result.rowcount == 1)

    def _insert(self, table: Any) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that can take ON CONFLICT DO NOTHING on the current backend."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)
