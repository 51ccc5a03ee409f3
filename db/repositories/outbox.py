from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from db.models import OutboxMessage
from db.repositories.base import Repository


class OutboxRepository(Repository):
    def add(
        self,
        chat_id: int,
        kind: str,
        payload: dict[str, Any],
        locale: str | None,
        order_id: int | None,
        now: datetime,
    ) -> None:
        self.session.add(
            OutboxMessage(
                chat_id=chat_id,
                kind=kind,
                payload=payload,
                locale=locale,
                order_id=order_id,
                created_at=now,
                attempts=0,
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

    async def sent_message_id(self, chat_id: int, order_id: int, kind: str) -> int | None:
        """The Telegram message id of the latest delivered row of this kind for an order."""
        statement = (
            select(OutboxMessage.message_id)
            .where(
                OutboxMessage.chat_id == chat_id,
                OutboxMessage.order_id == order_id,
                OutboxMessage.kind == kind,
                OutboxMessage.message_id.is_not(None),
            )
            .order_by(OutboxMessage.id.desc())
            .limit(1)
        )
        return await self.session.scalar(statement)

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
