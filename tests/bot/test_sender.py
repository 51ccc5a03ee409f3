"""The outbox sender through the real routers and a recording Telegram: what each refusal
does to the row, and that nothing behind it waits."""

from zoneinfo import ZoneInfo

import pytest
from aiogram.exceptions import TelegramBadRequest, TelegramMigrateToChat
from sqlalchemy import select

from bot.telegram import sender
from db.models import OutboxMessage, OutboxState
from services import clock, notices
from tests.bot.flows import add_districts, approve_all, register
from tests.bot.harness import Harness, buttons, texts
from tests.helpers import DISPATCH_CHAT, DISPATCHER

COURIER = 7
SUPERGROUP = -1001234567890


async def states(harness: Harness) -> dict[int, tuple[str, str, str | None]]:
    uow = harness.uow_factory()
    async with uow.read():
        rows = await uow.session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))
        return {row.id: (row.notice, row.state, row.last_error) for row in rows}


async def test_a_group_that_became_a_supergroup_hears_there(harness: Harness):
    await add_districts(harness, "North")
    await register(harness, COURIER, "Ann", ["North"])
    await approve_all(harness)
    await harness.send(DISPATCHER, "/order North soup", chat_id=DISPATCH_CHAT)
    offer = next(r for r in await harness.deliver() if r.chat_id == COURIER)
    harness.session.failing[DISPATCH_CHAT] = TelegramMigrateToChat(
        offer, "Bad Request: group chat was upgraded", migrate_to_chat_id=SUPERGROUP
    )

    await harness.tap(COURIER, buttons(offer)[0][1])
    delivered = await harness.deliver()

    assert texts(delivered, SUPERGROUP) == ["✅ Order #1 delivered by Ann (#1) in 0 s."]
    sent = await harness.say(DISPATCHER, "/order North tea", chat_id=SUPERGROUP)
    assert "#2</b> (North) went to Ann" in texts(sent, SUPERGROUP)[0]
    await harness.tap(COURIER, buttons(next(r for r in sent if r.chat_id == COURIER))[0][1])
    assert "Order #2 delivered" in texts(await harness.deliver(), SUPERGROUP)[0]


async def write_unreadable(harness: Harness, chat: int) -> None:
    uow = harness.uow_factory()
    async with uow.write():
        uow.outbox.add(chat, "order_teleported", {"order_id": 1}, None, clock.utcnow())
        uow.outbox.add(chat, "shift_ended", [1], None, clock.utcnow())  # type: ignore[arg-type]
        notices.write(uow, chat, None, notices.ShiftEnded(courier_id=1))
        await uow.commit()


async def test_a_row_this_release_cannot_read_fails_and_the_chat_goes_on(harness: Harness):
    await add_districts(harness, "North")
    await register(harness, COURIER, "Ann", ["North"])
    await approve_all(harness)
    await write_unreadable(harness, COURIER)

    delivered = await harness.deliver()

    assert texts(delivered, COURIER) == [
        "A dispatcher ended your shift. Start a new one with /online when you can."
    ]
    failed = [s for s in (await states(harness)).values() if s[1] == OutboxState.FAILED]
    assert failed == [
        ("order_teleported", "failed", "order_teleported: 1 problems"),
        ("shift_ended", "failed", "shift_ended: the payload is not an object"),
    ]


async def test_a_row_that_cannot_be_rendered_fails_and_the_chat_goes_on(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
):
    await add_districts(harness, "North")
    await register(harness, COURIER, "Ann", ["North"])
    await approve_all(harness)
    real_render = sender.render

    def broken_for_orders(notice: notices.Notice, zone: ZoneInfo):
        if isinstance(notice, notices.OrderAssigned):
            raise KeyError("a text this release lost")
        return real_render(notice, zone)

    monkeypatch.setattr(sender, "render", broken_for_orders)
    await harness.send(DISPATCHER, "/order North soup")
    await harness.send(DISPATCHER, "/offline_courier 1")

    delivered = await harness.deliver()

    assert "A dispatcher ended your shift" in texts(delivered, COURIER)[0]
    assert ("order_assigned", "failed") in [s[:2] for s in (await states(harness)).values()]
    assert await harness.deliver() == []  # nothing left spinning


async def test_telegram_refusing_a_row_for_good_fails_it_and_the_next_goes(harness: Harness):
    await add_districts(harness, "North")
    await register(harness, COURIER, "Ann", ["North"])
    await approve_all(harness)
    harness.session.refuse = lambda method: (
        TelegramBadRequest(method, "Bad Request: can't parse entities")
        if "soup" in str(getattr(method, "text", ""))
        else None
    )
    await harness.send(DISPATCHER, "/order North soup")
    await harness.send(DISPATCHER, "/offline_courier 1")

    delivered = await harness.deliver()

    assert texts(delivered, COURIER)[-2:] == [
        "A dispatcher ended your shift. Start a new one with /online when you can.",
        "Order #1 went back to the queue. You don't need to deliver it.",
    ]
    refused = [s for s in (await states(harness)).values() if s[1] == OutboxState.FAILED]
    assert refused == [
        ("order_assigned", "failed", "Telegram server says - Bad Request: can't parse entities")
    ]
