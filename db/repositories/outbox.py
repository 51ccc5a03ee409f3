from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, text, update

from db.models import Courier, CourierStatus, Order, OutboxMessage, OutboxState
from db.repositories.base import Repository, in_state, table
from db.repositories.leases import LeasedQueue
from db.repositories.orders import held

# Namespace (single-key form) of the PostgreSQL advisory locks on a recipient chat.
_CHAT_LOCKS = "SELECT pg_advisory_xact_lock(:chat_id)"


def _pending() -> Any:
    return in_state(OutboxMessage.state, OutboxState.PENDING)


class OutboxRepository(Repository):
    """Notices to deliver, and what became of them.

    Rows added in a transaction are written when it commits (`write_added`), each recipient
    chat locked first on PostgreSQL: so a chat's rows get ids in the order their
    transactions commit, which is the order the sender delivers them in. Until then they are
    not visible to queries, not even in their own transaction.
    """

    def __init__(self, session: Any) -> None:
        super().__init__(session)
        self.added: list[dict[str, Any]] = []
        self.queue = LeasedQueue(session, OutboxMessage)

    def add(
        self,
        chat_id: int,
        notice: str,
        payload: dict[str, Any],
        locale: str | None,
        now: datetime,
        *,
        order_id: int | None = None,
        courier_id: int | None = None,
        delivered_as: int | None = None,
    ) -> None:
        """A row to deliver; or, with `delivered_as`, the record of a message already sent."""
        self.added.append(
            {
                "chat_id": chat_id,
                "notice": notice,
                "payload": payload,
                "locale": locale,
                "order_id": order_id,
                "courier_id": courier_id,
                "created_at": now,
                "state": OutboxState.PENDING if delivered_as is None else OutboxState.SENT,
                "attempts": 0,
                "message_id": delivered_as,
                "sent_at": now if delivered_as is not None else None,
            }
        )

    async def write_added(self) -> int:
        """Insert the rows added in this transaction, in one statement; how many are to send."""
        rows, self.added = self.added, []
        if not rows:
            return 0
        if self.dialect == "postgresql":
            for chat_id in sorted({row["chat_id"] for row in rows}):
                await self.session.execute(text(_CHAT_LOCKS), {"chat_id": chat_id})
        await self.session.execute(insert(table(OutboxMessage)), rows)
        return sum(row["state"] is OutboxState.PENDING for row in rows)

    async def mark_sent(
        self, sent: Sequence[tuple[int, int | None]], now: datetime, owner: str
    ) -> None:
        """(row id, Telegram message id) of each row delivered."""
        await self.queue.update_each(
            [
                {"id": row_id, "message_id": message_id, "state": OutboxState.SENT, "sent_at": now}
                for row_id, message_id in sent
            ],
            owner,
        )

    async def mark_failed(self, failed: Sequence[tuple[int, str]], owner: str | None) -> None:
        """(row id, error) of each row Telegram refused for good."""
        await self.queue.update_each(
            [
                {"id": row_id, "state": OutboxState.FAILED, "last_error": error[:1000]}
                for row_id, error in failed
            ],
            owner,
        )

    async def retry_later(self, retries: Sequence[tuple[int, datetime, str]], owner: str) -> None:
        """(row id, not before, error) of each row to try again."""
        await self.queue.update_each(
            [
                {"id": row_id, "next_attempt_at": at, "last_error": error[:1000]}
                for row_id, at, error in retries
            ],
            owner,
        )

    async def release(self, row_ids: Iterable[int], owner: str) -> None:
        """Give up the lease on rows not attempted: another sender may take them now."""
        if ids := list(row_ids):
            await self.queue.release(owner, ids)

    async def renew(self, owner: str, until: datetime, chat_ids: Collection[int]) -> set[int]:
        """Extend the leases the owner holds on waiting rows of these chats; which chats."""
        return await self.queue.renew(owner, until, chat_ids)

    async def give_back(self, owner: str | None) -> int:
        """End every lease the owner (any, with None) holds on waiting rows; how many."""
        return await self.queue.release(owner)

    async def message_ids(
        self,
        chat_id: int,
        notices: Collection[str],
        *,
        order_id: int | None = None,
        courier_id: int | None = None,
    ) -> list[int]:
        """The Telegram messages that rows of these notices, about this order or courier,
        became, oldest first."""
        statement = select(OutboxMessage.message_id).where(
            OutboxMessage.chat_id == chat_id,
            OutboxMessage.notice.in_(list(notices)),
            OutboxMessage.message_id.is_not(None),
        )
        if order_id is not None:
            statement = statement.where(OutboxMessage.order_id == order_id)
        if courier_id is not None:
            statement = statement.where(OutboxMessage.courier_id == courier_id)
        return [i for i in await self.session.scalars(statement.order_by(OutboxMessage.id)) if i]

    async def sent_between(
        self, chat_id: int, notice: str, order_id: int, since: datetime, deadline: datetime
    ) -> bool:
        """Whether a row of this notice about this order, written since `since`, reached the
        chat by `deadline`."""
        statement = select(OutboxMessage.id).where(
            OutboxMessage.order_id == order_id,
            OutboxMessage.chat_id == chat_id,
            OutboxMessage.notice == notice,
            OutboxMessage.created_at >= since,
            OutboxMessage.sent_at <= deadline,
        )
        return (await self.session.scalar(statement.limit(1))) is not None

    async def chats_told(self, notice: str, courier_id: int) -> list[int]:
        """Every chat a notice of this kind about this courier was written for."""
        statement = (
            select(OutboxMessage.chat_id)
            .where(OutboxMessage.notice == notice, OutboxMessage.courier_id == courier_id)
            .distinct()
        )
        return list(await self.session.scalars(statement))

    async def move_chat(self, old: int, new: int) -> None:
        """A group became a supergroup: its waiting rows go to the new chat id."""
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.chat_id == old, _pending())
            .values(chat_id=new, claimed_by=None, claimed_until=None)
        )

    async def backlog(self) -> tuple[int, datetime | None]:
        """How many rows wait, and when the oldest of them was written."""
        statement = select(func.count(), func.min(OutboxMessage.created_at)).where(_pending())
        count, oldest = (await self.session.execute(statement)).one()
        return count, oldest

    async def prune(self, before: datetime, supersedable: dict[str, list[str]], limit: int) -> int:
        """Delete up to `limit` delivered and failed rows written before `before`, except the
        messages a later notice may still supersede: those of orders offered or in progress
        and of couriers waiting."""
        open_orders = select(Order.id).where(held())
        waiting = select(Courier.id).where(in_state(Courier.status, CourierStatus.PENDING))
        still_needed = or_(
            OutboxMessage.notice.in_(supersedable["order"])
            & OutboxMessage.order_id.in_(open_orders),
            OutboxMessage.notice.in_(supersedable["courier"])
            & OutboxMessage.courier_id.in_(waiting),
        )
        old = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.state != OutboxState.PENDING,
                OutboxMessage.created_at < before,
                ~still_needed,
            )
            .limit(limit)
        )
        result: Any = await self.session.execute(
            delete(OutboxMessage).where(OutboxMessage.id.in_(old.scalar_subquery()))
        )
        return int(result.rowcount or 0)
