from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from db.models import OutboxMessage
from db.repositories.base import Repository


class OutboxRepository(Repository):
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
        self.session.add(
            OutboxMessage(
                chat_id=chat_id,
                notice=notice,
                payload=payload,
                locale=locale,
                order_id=order_id,
                courier_id=courier_id,
                created_at=now,
                attempts=0,
                message_id=delivered_as,
                sent_at=now if delivered_as is not None else None,
            )
        )

    async def pending(self, limit: int, max_attempts: int) -> list[OutboxMessage]:
        statement = (
            select(OutboxMessage)
            .where(OutboxMessage.sent_at.is_(None), OutboxMessage.attempts < max_attempts)
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        return list(await self.session.scalars(statement))

    async def message_ids(
        self,
        chat_id: int,
        notice: str,
        *,
        order_id: int | None = None,
        courier_id: int | None = None,
    ) -> list[int]:
        """The Telegram messages that rows of this notice, about this order or courier, became."""
        statement = select(OutboxMessage.message_id).where(
            OutboxMessage.chat_id == chat_id,
            OutboxMessage.notice == notice,
            OutboxMessage.message_id.is_not(None),
        )
        if order_id is not None:
            statement = statement.where(OutboxMessage.order_id == order_id)
        if courier_id is not None:
            statement = statement.where(OutboxMessage.courier_id == courier_id)
        return [i for i in await self.session.scalars(statement.order_by(OutboxMessage.id)) if i]

    async def chats_told(self, notice: str, courier_id: int) -> list[int]:
        """Every chat a notice of this kind about this courier was written for."""
        statement = (
            select(OutboxMessage.chat_id)
            .where(OutboxMessage.notice == notice, OutboxMessage.courier_id == courier_id)
            .distinct()
        )
        return list(await self.session.scalars(statement))

    async def mark_sent(self, row_id: int, message_id: int | None, now: datetime) -> None:
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id)
            .values(sent_at=now, message_id=message_id, attempts=OutboxMessage.attempts + 1)
        )

    async def mark_failed(
        self, row_id: int, error: str, *, give_up: bool, max_attempts: int
    ) -> None:
        attempts = max_attempts if give_up else OutboxMessage.attempts + 1
        await self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id)
            .values(attempts=attempts, last_error=error[:1000])
        )
