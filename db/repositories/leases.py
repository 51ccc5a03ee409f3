"""Queues of rows per chat, taken by leases: the outbox, the inbox and the shops' webhooks
share these statements (a webhook's "chat" is its endpoint).

A leased queue's rows belong to a chat (`chat_id`; `endpoint_id` for webhooks) and wait
while `state = 'pending'`. A worker leases a chat's oldest waiting rows (`claimed_by`,
`claimed_until`), so one worker at a time has a chat, and takes its rows in order; a row it
could not finish waits until `next_attempt_at`. When a worker dies its leases run out and
another takes over.
"""

from collections.abc import Collection
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Select, Update, bindparam, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from db.models import (
    InboxState,
    InboxUpdate,
    OutboxMessage,
    OutboxState,
    WebhookDelivery,
    WebhookState,
)
from db.repositories.base import in_state, table

Queued = type[OutboxMessage] | type[InboxUpdate] | type[WebhookDelivery]
_PENDING = {
    OutboxMessage: OutboxState.PENDING,
    InboxUpdate: InboxState.PENDING,
    WebhookDelivery: WebhookState.PENDING,
}


def lane(model: Queued) -> Any:
    """The column whose rows go in order, one worker at a time: the chat, or the endpoint."""
    return WebhookDelivery.endpoint_id if model is WebhookDelivery else model.chat_id  # type: ignore[union-attr]


def pending(model: Queued) -> Any:
    """`state = 'pending'`, written out so that the partial index serves it."""
    return in_state(model.state, _PENDING[model])


class LeasedQueue:
    """The leasing statements of one queue's table, run in the session given."""

    def __init__(self, session: AsyncSession, model: Queued) -> None:
        self.session = session
        self.model = model

    @property
    def postgresql(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    async def any_due(self, now: datetime) -> bool:
        """Whether some chat's oldest waiting row may be claimed now: a read, no lock."""
        found = await self.session.scalar(_any_due(self.model), {"now": now})
        return bool(found)

    async def claim(
        self,
        now: datetime,
        until: datetime,
        owner: str,
        *,
        chats: int,
        per_chat: int,
        busy: Collection[int] = (),
    ) -> list[Any]:
        """Lease to `owner` the first rows of up to `chats` chats whose oldest waiting row is
        due and free; never a chat in `busy` (which the owner has already).

        Two statements, on purpose. On PostgreSQL the first locks the chats' oldest rows, and
        the second ranks the rows behind them in a snapshot taken after those locks: one
        statement would rank rows as they were before another worker's outcomes committed.
        """
        due = _due_chats(self.model, self.postgresql)
        chat_ids = list(
            await self.session.scalars(due, {"now": now, "chats": chats, "busy": list(busy)})
        )
        if not chat_ids:
            return []
        values = {"chat_ids": chat_ids, "per_chat": per_chat, "owner": owner, "until": until}
        rows = list(await self.session.execute(_lease_first_rows(self.model), values))
        key = lane(self.model).key
        return sorted(rows, key=lambda row: (getattr(row, key), row.id))

    async def renew(self, owner: str, until: datetime, chat_ids: Collection[int]) -> set[int]:
        """Extend the leases the owner holds on waiting rows of these chats; the chats whose
        leases it still held."""
        model = self.model
        renewed = await self.session.scalars(
            update(model)
            .where(model.claimed_by == owner, pending(model), lane(model).in_(list(chat_ids)))
            .values(claimed_until=until)
            .returning(lane(model))
            .execution_options(synchronize_session=False)
        )
        return set(renewed)

    async def update_each(self, rows: list[dict[str, Any]], owner: str | None) -> None:
        """One UPDATE by primary key, executed for every row (`id` and new values) in one
        batch. Each counts as an attempt and gives its lease back. With an `owner`, a row
        whose lease another worker has taken since is left alone."""
        if not rows:
            return
        columns = tuple(name for name in rows[0] if name != "id")
        statement = _outcome_statement(self.model, columns, fenced=owner is not None)
        await self.session.execute(
            statement,
            [
                {"row_id": row["id"], "owner": owner, **{f"new_{n}": row[n] for n in columns}}
                for row in rows
            ],
        )

    async def release(
        self, owner: str | None, row_ids: Collection[int] | None = None, *, any_state: bool = False
    ) -> int:
        """End leases on waiting rows (on any row, with `any_state`): the owner's (every
        owner's with None), of these rows (all with None); how many there were."""
        model = self.model
        statement = update(model).values(claimed_by=None, claimed_until=None)
        statement = statement.where(model.claimed_by.is_not(None))
        if not any_state:
            statement = statement.where(pending(model))
        if owner is not None:
            statement = statement.where(model.claimed_by == owner)
        if row_ids is not None:
            statement = statement.where(model.id.in_(list(row_ids)))
        result: Any = await self.session.execute(statement)
        return int(result.rowcount or 0)


@cache
def _due_condition(model: Queued) -> Any:
    """A chat's head row may be claimed: due, and nothing of the chat leased. An update
    whose effects committed keeps its lease until its handler is over (its answers, its
    dialog's state), so its chat's next update waits for it on every instance."""
    now = bindparam("now", type_=model.claimed_until.type)
    due = (
        pending(model),
        or_(model.claimed_until.is_(None), model.claimed_until < now),
        or_(model.next_attempt_at.is_(None), model.next_attempt_at <= now),
    )
    if model is not InboxUpdate:
        return due
    other = aliased(InboxUpdate)
    held = select(other.id).where(
        other.chat_id == model.chat_id, other.id != model.id, other.claimed_until >= now
    )
    return (*due, ~exists(held))


@cache
def _heads(model: Queued) -> Any:
    """Each chat's oldest waiting row."""
    return (
        select(func.min(model.id).label("id")).where(pending(model)).group_by(lane(model))
    ).subquery()


@cache
def _any_due(model: Queued) -> Select[Any]:
    heads = _heads(model)
    return select(
        exists(select(model.id).join(heads, model.id == heads.c.id).where(*_due_condition(model)))
    )


@cache
def _due_chats(model: Queued, postgresql: bool) -> Select[Any]:
    """The chats whose oldest waiting row is due and not leased, oldest first; on
    PostgreSQL with those rows locked, skipping rows another worker has locked.

    The row's own state is checked again here: PostgreSQL re-checks a locked row's WHERE
    against its latest version, but not the aggregate that picked it as the oldest.
    Built once per table (workers run it all the time); bound as it runs: now, chats, busy.
    """
    heads = _heads(model)
    due = (
        select(lane(model))
        .join(heads, model.id == heads.c.id)
        .where(*_due_condition(model), lane(model).not_in(bindparam("busy", expanding=True)))
        .order_by(model.id)
        .limit(bindparam("chats"))
    )
    if postgresql:
        due = due.with_for_update(of=model, skip_locked=True)
    return due


@cache
def _lease_first_rows(model: Queued) -> Update:
    """Lease the first `per_chat` waiting rows of each of `chat_ids` to `owner` until
    `until`, and return them (as plain rows: no ORM object is built). Built once per table,
    like `_due_chats`."""
    queue = table(model)
    chat = queue.c[lane(model).key]
    place = func.row_number().over(partition_by=chat, order_by=queue.c.id)
    ranked = (
        select(queue.c.id, place.label("place"))
        .where(pending(model), chat.in_(bindparam("chat_ids", expanding=True)))
        .subquery()
    )
    first_rows = select(ranked.c.id).where(ranked.c.place <= bindparam("per_chat"))
    return (
        update(queue)
        .where(queue.c.id.in_(first_rows), pending(model))  # checked again on each row
        .values(claimed_by=bindparam("owner"), claimed_until=bindparam("until"))
        .returning(*queue.c)
    )


@cache
def _outcome_statement(model: Queued, columns: tuple[str, ...], *, fenced: bool) -> Update:
    """UPDATE one row by id (`row_id`) to the new values of these columns (`new_<column>`),
    counting the attempt and ending the lease; if fenced, only while `owner` holds it.
    Built once per table and kind of outcome."""
    queue = table(model)
    new = {name: bindparam(f"new_{name}", type_=queue.c[name].type) for name in columns}
    statement = (
        update(queue)
        .where(queue.c.id == bindparam("row_id"))
        .values(
            {**new, "attempts": queue.c.attempts + 1, "claimed_by": None, "claimed_until": None}
        )
    )
    if fenced:
        statement = statement.where(queue.c.claimed_by == bindparam("owner"))
    return statement
