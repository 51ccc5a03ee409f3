from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from db.models import IdempotencyKey
from db.repositories.base import Repository, table


class IdempotencyRepository(Repository):
    """Shops' idempotency keys (models.IdempotencyKey)."""

    async def find(self, client: str, key: str) -> IdempotencyKey | None:
        """The key, locked until the transaction ends (on PostgreSQL; SQLite's writers take
        turns anyway), so that two retries never both take it over."""
        statement = (
            select(IdempotencyKey)
            .where(IdempotencyKey.client == client, IdempotencyKey.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.scalars(statement)).one_or_none()

    async def insert(
        self, client: str, key: str, request_hash: str, now: datetime, until: datetime
    ) -> int | None:
        """A new key, running until `until`; None when it exists (another request has it)."""
        row = {
            "client": client,
            "key": key,
            "request_hash": request_hash,
            "created_at": now,
            "locked_until": until,
        }
        statement = (
            self._insert(table(IdempotencyKey))
            .values(row)
            .on_conflict_do_nothing(index_elements=["client", "key"])
            .returning(table(IdempotencyKey).c.id)
        )
        row_id = await self.session.scalar(statement)
        return None if row_id is None else int(row_id)

    async def restart(
        self,
        row_id: int,
        request_hash: str,
        now: datetime,
        until: datetime,
        *,
        keep_committed: bool,
    ) -> None:
        """Take over a key whose request died or expired: it runs again, for this request
        (which knows, with `keep_committed`, that the work it does was done already)."""
        values: dict[str, object] = {
            "request_hash": request_hash,
            "created_at": now,
            "locked_until": until,
            "status": None,
            "body": None,
        }
        if not keep_committed:
            values["committed_at"] = None
        await self.session.execute(
            update(IdempotencyKey).where(IdempotencyKey.id == row_id).values(values)
        )

    async def mark_committed(self, row_id: int, until: datetime, now: datetime) -> bool:
        """The request's work commits: while this request still holds the key."""
        return await self._compare_and_set(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == row_id, IdempotencyKey.locked_until == until)
            .values(committed_at=now)
        )

    async def answer(self, row_id: int, until: datetime, status: int, body: str) -> None:
        """Keep the request's answer, to give again."""
        await self.session.execute(
            update(IdempotencyKey)
            .where(IdempotencyKey.id == row_id, IdempotencyKey.locked_until == until)
            .values(status=status, body=body, locked_until=None)
        )

    async def forget(self, row_id: int, until: datetime) -> None:
        """No answer to keep: a key whose work did not commit goes (a retry runs anew); one
        whose work committed stays, its request over."""
        mine = (IdempotencyKey.id == row_id) & (IdempotencyKey.locked_until == until)
        await self.session.execute(
            delete(IdempotencyKey).where(mine, IdempotencyKey.committed_at.is_(None))
        )
        await self.session.execute(update(IdempotencyKey).where(mine).values(locked_until=None))

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` keys taken before `before`; how many went."""
        old = select(IdempotencyKey.id).where(IdempotencyKey.created_at < before).limit(limit)
        result: Any = await self.session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.id.in_(old.scalar_subquery()))
        )
        return int(result.rowcount or 0)
