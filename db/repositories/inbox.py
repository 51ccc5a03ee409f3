from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update

from db.models import InboxState, InboxUpdate
from db.repositories.base import Repository, table
from db.repositories.leases import LeasedQueue, pending


class InboxRepository(Repository):
    """Telegram updates, stored before Telegram is told they were taken (models.InboxUpdate)."""

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self.queue = LeasedQueue(session, InboxUpdate)

    async def store(self, rows: Sequence[dict[str, Any]]) -> int:
        """Insert the updates not stored yet (a copy of a stored one is ignored); how many
        were new."""
        if not rows:
            return 0
        inbox = table(InboxUpdate)
        statement = (
            self._insert(inbox)
            .on_conflict_do_nothing(index_elements=["bot_id", "update_id"])
            .returning(inbox.c.id)
        )
        return len((await self.session.execute(statement, list(rows))).all())

    async def mark_done(self, row_id: int, owner: str, now: datetime) -> bool:
        """The update had its effect: done, while `owner` still holds it; whether it was. The
        lease stays until the handler is over (`record`), holding the chat's next update."""
        return await self._compare_and_set(
            update(InboxUpdate)
            .where(InboxUpdate.id == row_id, InboxUpdate.claimed_by == owner, pending(InboxUpdate))
            .values(state=InboxState.DONE, done_at=now)
        )

    async def record(
        self,
        done: Sequence[int],
        failed: Sequence[tuple[int, str]],
        retries: Sequence[tuple[int, datetime, str]],
        owner: str,
        now: datetime,
    ) -> None:
        """What became of updates this owner handled: done, failed for good, to try again."""
        await self.queue.update_each(
            [{"id": i, "state": InboxState.DONE, "done_at": now} for i in done], owner
        )
        await self.queue.update_each(
            [
                {"id": i, "state": InboxState.FAILED, "done_at": now, "last_error": error[:1000]}
                for i, error in failed
            ],
            owner,
        )
        await self.queue.update_each(
            [{"id": i, "next_attempt_at": at, "last_error": e[:1000]} for i, at, e in retries],
            owner,
        )

    async def waiting(self) -> tuple[int, datetime | None]:
        """How many updates wait, and when the oldest of them was stored."""
        statement = select(func.count(), func.min(InboxUpdate.received_at)).where(
            pending(InboxUpdate)
        )
        count, oldest = (await self.session.execute(statement)).one()
        return count, oldest

    async def prune(self, before: datetime, limit: int) -> int:
        """Delete up to `limit` updates handled before `before`; how many went."""
        old = (
            select(InboxUpdate.id)
            .where(~pending(InboxUpdate), InboxUpdate.received_at < before)
            .limit(limit)
        )
        result: Any = await self.session.execute(
            delete(InboxUpdate).where(InboxUpdate.id.in_(old.scalar_subquery()))
        )
        return int(result.rowcount or 0)
