"""Dispatchers and couriers in the chat: /pending, buttons on a waiting courier's card, every
copy of a request closed on a decision, /offline_courier, /block and /unblock."""

from aiogram.methods import EditMessageText, SendMessage, SetMyCommands

from tests.bot.flows import add_districts, approve_all, register
from tests.bot.harness import Harness, buttons, message_of, texts
from tests.helpers import ADMIN, DISPATCH_CHAT, DISPATCHER, STRANGER

COURIER = 7


def prompts(requests: list) -> list[SendMessage]:
    """Messages sent with Approve and Reject on them."""
    return [r for r in requests if isinstance(r, SendMessage) and "Approve" in str(buttons(r))]


async def test_every_copy_of_a_request_loses_its_buttons_when_someone_decides(harness: Harness):
    await add_districts(harness, "North")
    await register(harness, COURIER, "Ann", ["North"])
    shown = await harness.send(ADMIN, "/pending")
    assert texts(shown) == ["1 waiting for approval: their requests follow."]
    card = await harness.send(DISPATCHER, "/courier 1", chat_id=DISPATCH_CHAT)
    assert "waiting for approval" in texts(card)[0]
    copies = prompts(await harness.deliver()) + prompts(card)
    # The registration's copies for both staff, the one /pending sent, the card.
    assert sorted(int(c.chat_id) for c in copies) == sorted(
        [ADMIN, ADMIN, DISPATCHER, DISPATCH_CHAT]
    )
    tapped = next(c for c in copies if c.chat_id == DISPATCHER)
    decided = await harness.tap(DISPATCHER, buttons(tapped)[0][1])
    assert any(isinstance(r, EditMessageText) and "approved" in r.text for r in decided)

    delivered = await harness.deliver()
    closed = [r for r in delivered if isinstance(r, EditMessageText)]
    assert sorted((int(r.chat_id or 0), r.message_id) for r in closed) == sorted(
        message_of(harness.session, c) for c in copies
    )
    assert all(r.text == "Courier #1 Ann: approved." and not r.reply_markup for r in closed)
    assert "You're approved!" in texts(delivered, COURIER)[0]


async def test_copies_not_yet_delivered_at_the_decision_are_closed_too(harness: Harness):
    await add_districts(harness, "North")
    await register(harness, COURIER, "Ann", ["North"])
    await harness.send(ADMIN, "/pending")
    await harness.tap(DISPATCHER, "reg:1:0")  # decided before any copy went out

    delivered = await harness.deliver()

    copies = prompts(delivered)
    assert len(copies) == 3  # to the admin twice, to the dispatcher once
    closed = {
        (int(r.chat_id or 0), r.message_id)
        for r in delivered
        if isinstance(r, EditMessageText) and r.text == "Courier #1 Ann: rejected."
    }
    assert {message_of(harness.session, c) for c in copies} <= closed


async def test_a_waiting_courier_sees_their_own_card_without_the_buttons(harness: Harness):
    await add_districts(harness, "North")
    await register(harness, COURIER, "Ann", ["North"])
    (card,) = [r for r in await harness.send(COURIER, "/courier 1") if isinstance(r, SendMessage)]
    assert "waiting for approval" in card.text
    assert buttons(card) == []


async def test_pending_when_nobody_waits(harness: Harness):
    assert texts(await harness.send(ADMIN, "/pending")) == ["Nobody is waiting for approval."]
    assert texts(await harness.send(STRANGER, "/pending")) == ["Only dispatchers can do that."]


async def test_offline_block_and_unblock_from_the_chat(harness: Harness):
    await add_districts(harness, "North")
    await register(harness, COURIER, "Ann", ["North"])
    await approve_all(harness)
    await harness.send(DISPATCHER, "/order North soup", chat_id=DISPATCH_CHAT)
    await harness.deliver()

    (offline,) = texts(await harness.send(DISPATCHER, "/offline_courier 1"))
    assert offline == (
        "Courier #1 Ann is off shift."
        " Their order #1 goes to the next free courier, or waits in the queue."
    )
    told = await harness.deliver()
    assert "A dispatcher ended your shift" in "\n".join(texts(told, COURIER))
    assert "went back to the queue. You don't need to deliver it." in "\n".join(
        texts(told, COURIER)
    )
    assert "back in the queue, place 1" in "\n".join(texts(told, DISPATCH_CHAT))

    (blocked,) = texts(await harness.send(ADMIN, "/block #1"))
    assert blocked == "Courier #1 Ann is blocked."  # no order of theirs any more
    (refused,) = texts(await harness.send(COURIER, "/online"))
    assert refused == "Your courier account is blocked. Talk to a dispatcher."
    (again,) = texts(await harness.send(ADMIN, "/block 1"))
    assert again == "Courier #1 (Ann) is already blocked."

    (unblocked,) = texts(await harness.send(ADMIN, "/unblock 1"))
    assert unblocked == "Courier #1 Ann is unblocked. They start a shift with /online."
    assert "You're unblocked" in "\n".join(texts(await harness.deliver(), COURIER))
    assert "You are online." in texts(await harness.send(COURIER, "/online"))[0]


async def test_dispatchers_get_the_new_commands_in_their_menu(harness: Harness):
    sent = await harness.send(DISPATCHER, "/start")
    menu = next(r for r in sent if isinstance(r, SetMyCommands))
    assert {"pending", "offline_courier", "block", "unblock"} <= {c.command for c in menu.commands}
    for command in ("/offline_courier", "/block x", "/unblock 1 2"):
        (usage,) = texts(await harness.send(DISPATCHER, command))
        assert usage.startswith("Please write it like this: /"), command
