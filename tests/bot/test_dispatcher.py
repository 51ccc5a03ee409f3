"""Dispatchers in the chat: orders, the queue, couriers, districts, statistics, invites."""

from aiogram.methods import (
    AnswerCallbackQuery,
    EditMessageReplyMarkup,
    EditMessageText,
    SendMessage,
    SendVenue,
)
from aiogram.types import Location, Venue

from tests.bot.flows import add_districts, approve_all, register
from tests.bot.harness import Harness, buttons, sent_message, texts
from tests.conftest import FakeClock
from tests.helpers import ADMIN, DISPATCH_CHAT, DISPATCHER, STRANGER


async def courier_with_order(harness: Harness) -> SendMessage:
    """Courier 7 in North, carrying order #1; returns the order message they got."""
    await add_districts(harness, "North", "Old Town")
    await register(harness, 7, "Ann", ["North"])
    await approve_all(harness)
    await harness.send(DISPATCHER, "/order North first", chat_id=DISPATCH_CHAT)
    return next(r for r in await harness.deliver() if isinstance(r, SendMessage) and r.chat_id == 7)


async def test_queued_order_is_assigned_on_completion_and_the_group_hears(harness: Harness):
    first = await courier_with_order(harness)
    (queued,) = texts(await harness.say(DISPATCHER, "/order north second", chat_id=DISPATCH_CHAT))
    assert "queued, place 1" in queued

    await harness.tap(7, buttons(first)[0][1], sent_message(first, 600))
    delivered = await harness.deliver()

    to_courier = texts(delivered, 7)
    assert len(to_courier) == 1
    assert "New order <b>#2</b>" in to_courier[0]
    to_group = texts(delivered, DISPATCH_CHAT)
    assert any("#1 delivered by Ann" in t for t in to_group)
    assert any("Order #2 went to Ann" in t for t in to_group)


async def test_the_longest_district_name_wins(harness: Harness):
    await add_districts(harness, "Old", "Old Town")
    (reply,) = texts(await harness.say(DISPATCHER, "/order old town flowers"))
    assert "(Old Town)" in reply


async def test_order_alone_walks_through_the_form(harness: Harness):
    await add_districts(harness, "North")
    sent = await harness.send(DISPATCHER, "/order", chat_id=DISPATCH_CHAT)
    (district,) = buttons(sent[0])
    prompt = await harness.tap(DISPATCHER, district[1], chat_id=DISPATCH_CHAT)
    assert any(isinstance(r, SendMessage) and "What should be delivered" in r.text for r in prompt)
    (pickup,) = await harness.send(DISPATCHER, "pizza", chat_id=DISPATCH_CHAT)
    assert "Where is it picked up?" in texts([pickup])[0]
    (skip,) = buttons(pickup)
    (dropoff,) = [
        r
        for r in await harness.tap(DISPATCHER, skip[1], chat_id=DISPATCH_CHAT)
        if isinstance(r, SendMessage)
    ]
    assert "Where is it delivered?" in dropoff.text
    await harness.tap(DISPATCHER, skip[1], chat_id=DISPATCH_CHAT)
    (reply,) = texts(await harness.deliver())
    assert "Order <b>#1</b> (North) is queued" in reply
    # The form is finished: more text is not a second order, a late Skip says so.
    assert texts(await harness.say(DISPATCHER, "pizza", chat_id=DISPATCH_CHAT)) == []
    late = await harness.tap(DISPATCHER, skip[1], chat_id=DISPATCH_CHAT)
    assert any("This form is over" in (getattr(r, "text", None) or "") for r in late)


async def test_the_form_takes_a_venue_and_a_location(harness: Harness):
    await add_districts(harness, "North")
    await register(harness, 7, "Ann", ["North"])
    await approve_all(harness)
    await harness.deliver()
    sent = await harness.send(DISPATCHER, "/order", chat_id=DISPATCH_CHAT)
    await harness.tap(DISPATCHER, buttons(sent[0])[0][1], chat_id=DISPATCH_CHAT)
    await harness.send(DISPATCHER, "flowers", chat_id=DISPATCH_CHAT)
    shop = Venue(
        location=Location(latitude=52.52, longitude=13.405), title="Rose & Co", address="1 Main St"
    )
    asked = await harness.send(
        DISPATCHER, None, chat_id=DISPATCH_CHAT, venue=shop, location=shop.location
    )
    assert "Where is it delivered?" in texts(asked)[0]
    # Text where a place is wanted is answered, and changes nothing.
    (again,) = texts(await harness.send(DISPATCHER, "Baker St", chat_id=DISPATCH_CHAT))
    assert "Please send a location or a venue" in again
    await harness.send(
        DISPATCHER, None, chat_id=DISPATCH_CHAT, location=Location(latitude=52.53, longitude=13.42)
    )
    delivered = await harness.deliver()
    venues = [r for r in delivered if isinstance(r, SendVenue)]
    assert [(v.chat_id, v.title, v.address) for v in venues] == [
        (7, "📦 Pickup · order #1", "Rose & Co, 1 Main St"),
        (7, "🏁 Drop-off · order #1", "52.53000, 13.42000"),
    ]
    (card,) = texts(await harness.say(DISPATCHER, "/track 1"))
    assert "Pickup: Rose &amp; Co, 1 Main St" in card
    assert "Drop-off: <a href" in card


async def test_unknown_district_gets_the_district_buttons(harness: Harness):
    await add_districts(harness, "North")
    sent = await harness.send(DISPATCHER, "/order Nowhere tea")
    assert "don't know that district" in sent[0].text  # type: ignore[union-attr]
    assert [text for text, _ in buttons(sent[0])] == ["North"]


async def test_bad_order_input_changes_nothing(harness: Harness):
    await add_districts(harness, "North")
    (empty,) = texts(await harness.send(DISPATCHER, "/order North"))
    assert "1 to 1000" in empty
    (long,) = texts(await harness.send(DISPATCHER, "/order North " + "x" * 1001))
    assert "1 to 1000" in long
    assert "No orders" in texts(await harness.send(DISPATCHER, "/orders"))[0]


async def test_couriers_and_strangers_cannot_dispatch(harness: Harness):
    await add_districts(harness, "North")
    for command in (
        "/order North tea",
        "/orders",
        "/couriers",
        "/stats",
        "/invite",
        "/track 1",
        "/cancel_order 1",
        "/reassign 1",
        "/courier 1",
        "/add_district East",
        "/order",
    ):
        (reply,) = texts(await harness.send(STRANGER, command))
        assert reply == "Only dispatchers can do that.", command


async def test_bad_arguments_get_the_usage(harness: Harness):
    for command, usage in [
        ("/track", "/track"),
        ("/track abc", "/track"),
        ("/cancel_order", "/cancel_order"),
        ("/reassign", "/reassign"),
        ("/reassign 1 2 3", "/reassign"),
        ("/courier x", "/courier"),
        ("/add_district", "/add_district"),
    ]:
        (reply,) = texts(await harness.send(DISPATCHER, command))
        assert reply.startswith("Please write it like this: " + usage), command


async def test_track_cancel_and_reassign(harness: Harness):
    order_message = await courier_with_order(harness)
    await register(harness, 8, "Bob", ["North"])
    await approve_all(harness)

    (card,) = texts(await harness.send(DISPATCHER, "/track #1"))
    assert "in progress with Ann (#1)" in card
    (moved,) = texts(await harness.send(DISPATCHER, "/reassign 1 #2"))
    assert "went to Bob (#2)" in moved
    delivered = await harness.deliver()
    assert any(
        isinstance(r, EditMessageReplyMarkup) and r.chat_id == 7 and r.message_id for r in delivered
    )
    assert "given to someone else" in texts(delivered, 7)[0]
    assert "New order <b>#1</b>" in texts(delivered, 8)[0]

    stale = await harness.tap(7, buttons(order_message)[0][1], sent_message(order_message, 1))
    assert "not yours" in stale[0].text  # type: ignore[union-attr]

    (cancelled,) = texts(await harness.send(DISPATCHER, "/cancel_order 1"))
    assert cancelled == "Order #1 is cancelled."
    assert "was cancelled" in texts(await harness.deliver(), 8)[0]
    (again,) = texts(await harness.send(DISPATCHER, "/cancel_order 1"))
    assert again == "Order #1 was cancelled."
    (missing,) = texts(await harness.send(DISPATCHER, "/track 99"))
    assert missing == "There is no order #99."


async def test_reassign_back_to_the_queue(harness: Harness):
    await courier_with_order(harness)
    (reply,) = texts(await harness.send(DISPATCHER, "/reassign 1"))
    assert "queued, place 1" in reply
    assert any("back in the queue" in t for t in texts(await harness.deliver(), DISPATCH_CHAT))


async def test_lists_page_and_open_cards(harness: Harness):
    await add_districts(harness, "North")
    for user in range(100, 113):
        await register(harness, user, f"C{user}", ["North"])
    sent = await harness.send(DISPATCHER, "/couriers")
    first_page = sent[0]
    assert "1-10 of 13" in first_page.text  # type: ignore[union-attr]
    names = [text for text, _ in buttons(first_page)]
    assert names[0] == "#1 C100"
    assert names[-1] == "▶"
    turned = await harness.tap(DISPATCHER, buttons(first_page)[-1][1])
    page_two = next(r for r in turned if isinstance(r, EditMessageText))
    assert "11-13 of 13" in page_two.text
    opened = await harness.tap(DISPATCHER, buttons(first_page)[0][1])
    assert "waiting for approval" in texts(opened)[0]
    assert "#1 C100" in texts(await harness.send(DISPATCHER, "/courier 1"))[0]
    assert all(len(data.encode()) <= 64 for _, data in buttons(first_page))


async def test_orders_list_and_stats(harness: Harness):
    await courier_with_order(harness)
    await harness.send(DISPATCHER, "/order North second")
    (listing,) = texts(await harness.send(DISPATCHER, "/orders"))
    assert "#1</b> · North · in progress with Ann" in listing
    assert "#2</b> · North · queued, place 1" in listing
    (stats,) = texts(await harness.send(ADMIN, "/stats"))
    assert "Posted: 2" in stats
    assert "Waiting: 1" in stats


async def test_districts_list_escapes_names(harness: Harness):
    await add_districts(harness, "<Center>")
    (reply,) = texts(await harness.send(ADMIN, "/add_district <center>"))
    assert reply == "District &lt;center&gt; already exists."
    (listing,) = texts(await harness.send(STRANGER, "/districts"))
    assert "<b>&lt;Center&gt;</b>: 0 couriers, 0 waiting" in listing


async def test_many_districts_split_into_messages_within_the_limit(harness: Harness):
    await add_districts(harness, *(f"District number {n:03} " + "z" * 40 for n in range(120)))
    parts = texts(await harness.send(DISPATCHER, "/districts"))
    assert len(parts) > 1
    assert all(len(part) <= 4096 for part in parts)


async def test_a_courier_who_blocked_the_bot_loses_the_order_to_the_next(harness: Harness):
    await add_districts(harness, "North")
    await register(harness, 7, "Ann", ["North"])
    await register(harness, 8, "Bob", ["North"])
    await approve_all(harness)
    harness.session.blocked.add(7)

    delivered = await harness.say(DISPATCHER, "/order North tea", chat_id=DISPATCH_CHAT)

    assert "New order <b>#1</b>" in texts(delivered, 8)[0]
    posted, moved_on = texts(delivered, DISPATCH_CHAT)
    assert "went to Ann" in posted
    assert moved_on == (  # two notices that waited together go as one message
        "Order #1: Ann (#1) could not be reached (they blocked the bot), so their shift is over"
        " and the order moves on.\n\nOrder #1 went to Bob (#2)."
    )
    to_ann = [r for r in delivered if isinstance(r, SendMessage) and r.chat_id == 7]
    assert len(to_ann) == 2  # the order and its withdrawal, each refused once: not retried
    assert await harness.deliver() == []
    (card,) = texts(await harness.send(DISPATCHER, "/courier 1"))
    assert "State: offline" in card


async def test_unknown_text_in_private_gets_help(harness: Harness):
    (reply,) = texts(await harness.send(STRANGER, "hello?"))
    assert "/help" in reply
    assert texts(await harness.send(STRANGER, "hello?", chat_id=DISPATCH_CHAT)) == []


async def test_every_callback_is_answered_even_when_stale(harness: Harness):
    sent = await harness.tap(DISPATCHER, "odist:1")
    assert isinstance(sent[0], AnswerCallbackQuery)


async def test_commands_addressed_to_the_bot_by_name_work_in_groups(harness: Harness):
    await add_districts(harness, "North")
    (reply,) = texts(
        await harness.say(DISPATCHER, "/order@dispatch_bot North tea", chat_id=DISPATCH_CHAT)
    )
    assert "Order <b>#1</b> (North) is queued" in reply


async def test_unknown_courier_number(harness: Harness):
    (reply,) = texts(await harness.send(DISPATCHER, "/courier 99"))
    assert reply == "There is no courier #99. See /couriers."


async def test_notifications_wait_out_a_telegram_outage(harness: Harness, fake_clock: FakeClock):
    await add_districts(harness, "North")
    await register(harness, 7, "Ann", ["North"])
    await approve_all(harness)
    await harness.send(DISPATCHER, "/order North tea")
    harness.session.outages = 10

    tries = []
    while harness.session.outages:
        tries += [r for r in await harness.deliver() if isinstance(r, SendMessage)]
        assert await harness.deliver() == []  # not due again until its backoff has passed
        fake_clock.advance(seconds=61)

    (order_message,) = texts(await harness.deliver(), 7)
    assert "New order <b>#1</b>" in order_message
    assert len(tries) == 10  # one try per backoff, never given up
