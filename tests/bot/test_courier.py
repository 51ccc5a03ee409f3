"""Couriers in the chat: registration, approval, shifts, districts, the card, Complete."""

import pytest
from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    SendMessage,
)

from services import couriers, districts
from tests.bot.flows import add_districts, approve_all, register
from tests.bot.harness import Harness, buttons, sent_message, texts
from tests.helpers import ADMIN, DISPATCH_CHAT, DISPATCHER, STRANGER

COURIER = 7


async def test_registration_with_approval(harness: Harness):
    await add_districts(harness, "North", "South")

    replies = await register(harness, COURIER, "Ann Lee", ["North", "South"])
    assert "went to the dispatchers" in replies[-1]

    requests = [r for r in await harness.deliver() if isinstance(r, SendMessage)]
    to_staff = {r.chat_id: r for r in requests}
    assert set(to_staff) == {ADMIN, DISPATCHER}
    assert "Ann Lee" in to_staff[ADMIN].text
    assert [text for text, _ in buttons(to_staff[ADMIN])] == ["✅ Approve", "❌ Reject"]

    approve = buttons(to_staff[DISPATCHER])[0][1]
    decided = await harness.tap(DISPATCHER, approve)
    assert any(isinstance(r, EditMessageText) and "approved" in r.text for r in decided)
    told = texts(await harness.deliver(), COURIER)
    assert told == ["You're approved! You are online: orders of your districts will come here."]

    again = await harness.tap(ADMIN, buttons(to_staff[ADMIN])[1][1])
    alert = next(r for r in again if isinstance(r, AnswerCallbackQuery))
    assert alert.show_alert
    assert "not waiting for approval" in (alert.text or "")


async def test_name_step_offers_the_telegram_name_and_checks_length(harness: Harness):
    await add_districts(harness, "North")
    sent = await harness.send(COURIER, "/register", name="Ann")
    assert sent[0].reply_markup.keyboard[0][0].text == "Ann"  # type: ignore[union-attr]

    (too_long,) = texts(await harness.send(COURIER, "x" * 65))
    assert "1 to 64" in too_long
    assert texts(await harness.send(COURIER, "   "))[0].startswith("A name needs")


async def test_done_without_a_district_is_refused(harness: Harness):
    await add_districts(harness, "North")
    await harness.send(COURIER, "/register")
    sent = await harness.send(COURIER, "Ann")
    keyboard = next(r for r in sent if buttons(r))
    done = await harness.tap(COURIER, buttons(keyboard)[-1][1])
    alert = next(r for r in done if isinstance(r, AnswerCallbackQuery))
    assert "at least one district" in (alert.text or "")


@pytest.mark.parametrize("approval", [False])
async def test_without_approval_the_courier_starts_at_once(harness: Harness):
    await add_districts(harness, "North")
    replies = await register(harness, COURIER, "Ann", ["North"])
    assert "Welcome aboard, courier #1" in replies[-1]


async def test_registration_in_russian(harness: Harness):
    await add_districts(harness, "Север")
    replies = await register(harness, COURIER, "Анна", ["Север"], language="ru")
    assert "отправлена диспетчерам" in replies[-1]


async def test_invite_link_registers_without_approval(harness: Harness):
    await add_districts(harness, "North")
    (link_text,) = texts(await harness.send(DISPATCHER, "/invite"))
    token = link_text.split("start=")[1].strip()

    await harness.send(COURIER, f"/start {token}")
    sent = await harness.send(COURIER, "Ann")
    keyboard = next(r for r in sent if buttons(r))
    await harness.tap(COURIER, buttons(keyboard)[0][1])
    finished = await harness.tap(COURIER, buttons(keyboard)[-1][1])
    assert "Welcome aboard" in texts(finished)[0]

    (used,) = texts(await harness.send(8, f"/start {token}"))
    assert "used up or expired" in used


async def test_an_invite_is_made_only_in_a_private_chat(harness: Harness):
    (refusal,) = texts(await harness.send(DISPATCHER, "/invite", chat_id=-100500))
    assert "in a private chat" in refusal
    assert "start=" not in refusal
    (stranger,) = texts(await harness.send(8, "/invite", chat_id=-100500))
    assert stranger == "Only dispatchers can do that."


async def test_order_complete_twice_and_a_stranger(harness: Harness):
    await add_districts(harness, "North")
    await register(harness, COURIER, "Ann", ["North"])
    await approve_all(harness)
    sent = await harness.say(DISPATCHER, "/order North 2 boxes <fragile>", chat_id=DISPATCH_CHAT)
    (posted,) = texts(sent, DISPATCH_CHAT)
    assert "went to Ann (#1)" in posted

    order_message = next(r for r in sent if isinstance(r, SendMessage) and r.chat_id == COURIER)
    assert "&lt;fragile&gt;" in order_message.text
    ((label, data),) = buttons(order_message)
    assert "Complete" in label
    message = sent_message(order_message, 5000)

    stranger = await harness.tap(STRANGER, data, message)
    assert [type(r) for r in stranger] == [AnswerCallbackQuery]
    assert stranger[0].show_alert

    done = await harness.tap(COURIER, data, message)
    assert isinstance(done[0], AnswerCallbackQuery)
    edit = next(r for r in done if isinstance(r, EditMessageText))
    assert "delivered in" in edit.text
    assert edit.reply_markup is None

    twice = await harness.tap(COURIER, data, message)
    assert [type(r) for r in twice] == [AnswerCallbackQuery]
    assert "already completed" in (twice[0].text or "")
    told = texts(await harness.deliver(), DISPATCH_CHAT)
    assert len(told) == 1
    assert "delivered by Ann" in told[0]


async def test_me_online_offline_and_my_districts(harness: Harness):
    await add_districts(harness, "North", "South")
    await register(harness, COURIER, "Ann", ["North"])
    await approve_all(harness)

    (card,) = texts(await harness.send(COURIER, "/me"))
    assert "Average delivery time: no data yet" in card
    assert "Districts: North" in card

    assert "shift is over" in texts(await harness.send(COURIER, "/offline"))[0]
    await harness.send(DISPATCHER, "/order South soup")
    online = texts(await harness.send(COURIER, "/online"))[0]
    # Not South's order; and where they are, please.
    assert online.startswith("You are online. Orders of your districts will come here.\n\n📍")

    sent = await harness.send(COURIER, "/mydistricts")
    keyboard = next(r for r in sent if buttons(r))
    assert buttons(keyboard)[0][0] == "✅ North"
    south = buttons(keyboard)[1][1]
    toggled = await harness.tap(COURIER, south)
    assert any(isinstance(r, EditMessageReplyMarkup) for r in toggled)
    finished = await harness.tap(COURIER, buttons(keyboard)[-1][1])
    assert "Your districts: North, South." in texts(finished)[0]
    (card,) = texts(await harness.send(COURIER, "/me"))
    assert "Active order: #1 · South · soup" in card  # served from the new district at once


async def test_courier_commands_need_a_courier(harness: Harness):
    for command in ("/me", "/online", "/offline", "/mydistricts"):
        (reply,) = texts(await harness.send(STRANGER, command))
        assert "registered couriers" in reply


async def test_a_stale_district_button_is_answered(harness: Harness):
    await add_districts(harness, "North")
    sent = await harness.tap(COURIER, "tgl:1")
    assert sent[0].show_alert  # type: ignore[union-attr]
    assert "out of date" in sent[0].text  # type: ignore[union-attr]


async def test_forged_callback_data_is_refused_politely(harness: Harness):
    for data in ("done:abc", "done:99999", "reg:1:maybe"):
        sent = await harness.tap(STRANGER, data)
        assert sent
        assert all(isinstance(r, AnswerCallbackQuery) for r in sent)


@pytest.mark.parametrize("approval", [False])
async def test_a_courier_of_ninety_long_districts_still_fits_one_message(harness: Harness):
    many = [f"{n:02} " + "Long district name " * 3 for n in range(90)]
    await add_districts(harness, *many)
    await harness.send(COURIER, "/register")
    sent = await harness.send(COURIER, "Ann")
    keyboard = next(r for r in sent if buttons(r))
    assert len(buttons(keyboard)) == 91  # every district, and Done
    await harness.tap(COURIER, buttons(keyboard)[0][1])
    finished = await harness.tap(COURIER, buttons(keyboard)[-1][1])
    assert "Welcome aboard" in texts(finished)[0]
    # The other 89, as 89 more taps would choose them, only sooner.
    every = [d.id for d in await districts.list_districts(harness.uow_factory())]
    await couriers.set_districts(harness.uow_factory(), COURIER, every)

    (card,) = texts(await harness.send(COURIER, "/me"))
    (listing,) = texts(await harness.send(DISPATCHER, "/couriers"))
    assert "…" in card
    assert len(card) < 4096
    assert len(listing) < 4096
