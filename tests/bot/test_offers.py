"""Offers through the routers and the outbox sender: the courier's one message goes from
Accept and Decline to Complete, or to what became of the offer."""

import pytest
from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_bot, build_dispatcher
from db.models import OutboxMessage
from db.uow import DispatchRules, UnitOfWorkFactory
from handlers.i18n import PoI18n
from services import staff
from tests.bot.conftest import settings
from tests.bot.flows import add_districts, approve_all, register
from tests.bot.harness import Harness, RecordingSession, buttons, sent_message, texts
from tests.helpers import ADMIN, DISPATCH_CHAT, DISPATCHER

ANN, BOB = 7, 8


@pytest.fixture
async def offering(engine: AsyncEngine) -> Harness:
    """The bot with 60 s offers, a dispatcher, and Ann and Bob of North."""
    uow_factory = UnitOfWorkFactory(engine, rules=DispatchRules(offer_seconds=60))
    config = settings(offer_seconds=60)
    await staff.sync_admins(uow_factory(), config.admin_ids)
    await staff.grant_dispatcher(uow_factory(), ADMIN, DISPATCHER)
    dispatcher = build_dispatcher(config, uow_factory, PoI18n("en"))
    harness = Harness(dispatcher, build_bot(config, RecordingSession()), uow_factory)
    await add_districts(harness, "North")
    await register(harness, ANN, "Ann", ["North"])
    await register(harness, BOB, "Bob", ["North"])
    await approve_all(harness)
    return harness


async def offer_to_ann(harness: Harness) -> SendMessage:
    sent = await harness.say(DISPATCHER, "/order North soup", chat_id=DISPATCH_CHAT)
    assert "is offered to Ann (#1)" in texts(sent, DISPATCH_CHAT)[0]
    (offer,) = [r for r in sent if isinstance(r, SendMessage) and r.chat_id == ANN]
    assert [label for label, _ in buttons(offer)] == ["✅ Accept", "✖️ Decline"]
    assert "Accept or decline by" in offer.text
    return offer


async def test_accept_turns_the_offer_into_the_order_with_complete(offering: Harness):
    offer = await offer_to_ann(offering)
    message = sent_message(offer, offering.session.results[id(offer)].message_id)

    tapped = await offering.tap(ANN, buttons(offer)[0][1], message)
    delivered = await offering.deliver()

    assert isinstance(tapped[0], AnswerCallbackQuery)
    assert "is yours" in (tapped[0].text or "")
    (edit,) = [r for r in delivered if isinstance(r, EditMessageText) and r.chat_id == ANN]
    assert edit.message_id == message.message_id
    assert [label for label, _ in buttons(edit)] == ["✅ Complete"]
    assert "accepted by Ann (#1)" in texts(delivered, DISPATCH_CHAT)[0]
    again = await offering.tap(ANN, buttons(offer)[0][1], message)
    assert "already accepted" in (again[0].text or "")


async def test_decline_edits_the_offer_and_passes_the_order_to_bob(offering: Harness):
    offer = await offer_to_ann(offering)
    message = sent_message(offer, offering.session.results[id(offer)].message_id)

    await offering.tap(ANN, buttons(offer)[1][1], message)
    delivered = await offering.deliver()

    (edit,) = [r for r in delivered if isinstance(r, EditMessageText) and r.chat_id == ANN]
    assert "you declined it" in edit.text
    assert edit.reply_markup is None
    (to_bob,) = [r for r in delivered if isinstance(r, SendMessage) and r.chat_id == BOB]
    assert [label for label, _ in buttons(to_bob)] == ["✅ Accept", "✖️ Decline"]


async def test_an_accepted_offer_whose_message_was_not_recorded_comes_anew(offering: Harness):
    """The bot died after Telegram took the offer and before it noted the message: the
    Accept still brings the courier a Complete button, as a message of its own."""
    offer = await offer_to_ann(offering)
    message = sent_message(offer, offering.session.results[id(offer)].message_id)
    uow = offering.uow_factory()
    async with uow.write():
        await uow.session.execute(update(OutboxMessage).values(message_id=None))
        await uow.commit()

    await offering.tap(ANN, buttons(offer)[0][1], message)
    delivered = await offering.deliver()

    (fresh,) = [r for r in delivered if isinstance(r, SendMessage) and r.chat_id == ANN]
    assert [label for label, _ in buttons(fresh)] == ["✅ Complete"]
    assert not [r for r in delivered if isinstance(r, EditMessageText) and r.chat_id == ANN]
