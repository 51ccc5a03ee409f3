"""Bad input in the chat gets a polite answer on SQLite and PostgreSQL, and never a traceback."""

import logging
from datetime import UTC, datetime

import pytest
from aiogram.methods import AnswerCallbackQuery, EditMessageText
from aiogram.types import Chat, Message, PhotoSize, Update

from tests.bot.flows import add_districts, approve_all, register
from tests.bot.harness import Harness, buttons, texts
from tests.helpers import ADMIN, DISPATCHER

COURIER = 7


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def assert_clean(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors]
    assert "went wrong" not in caplog.text


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ("/track 99999999999", "There is no order #99999999999."),
        ("/track 2147483648", "There is no order #2147483648."),
        ("/courier 3000000000", "There is no courier #3000000000. See /couriers."),
        ("/cancel_order 99999999999", "There is no order #99999999999."),
        ("/reassign 1 99999999999", "There is no courier #99999999999. See /couriers."),
        ("/block 99999999999", "There is no courier #99999999999. See /couriers."),
        ("/offline_courier 0", "There is no courier #0. See /couriers."),
        ("/track 1234567890123456789", "Please write it like this: /track"),
        ("/track ١٢", "Please write it like this: /track"),
        ("/add_district " + "ﬃ" * 22, "A district name needs 1 to 64 visible characters."),
        ("/add_district \u200b\u202e", "A district name needs 1 to 64 visible characters."),
    ],
)
async def test_commands_with_impossible_numbers_or_names(
    harness_on_each_database: Harness,
    no_tracebacks: pytest.LogCaptureFixture,
    command: str,
    answer: str,
):
    harness = harness_on_each_database
    await add_districts(harness, "North")
    await register(harness, COURIER, "Ann", ["North"])
    await approve_all(harness)
    await harness.send(DISPATCHER, "/order North soup")

    (reply,) = texts(await harness.send(DISPATCHER, command))

    assert reply.startswith(answer)
    assert_clean(no_tracebacks)


@pytest.mark.parametrize(
    "data",
    ["done:99999999999", "done:2147483648", "reg:3000000000:1", "card:99999999999", "page:o:-1"],
)
async def test_forged_buttons_are_answered_and_change_nothing(
    harness_on_each_database: Harness, no_tracebacks: pytest.LogCaptureFixture, data: str
):
    harness = harness_on_each_database
    sent = await harness.tap(DISPATCHER, data)
    assert [type(r) for r in sent] == [AnswerCallbackQuery]
    assert "out of date" in (sent[0].text or "")  # type: ignore[union-attr]
    assert_clean(no_tracebacks)


async def test_long_district_names_that_fold_longer_work_on_each_database(
    harness_on_each_database: Harness, no_tracebacks: pytest.LogCaptureFixture
):
    harness = harness_on_each_database
    (added,) = texts(await harness.send(DISPATCHER, "/add_district " + "ß" * 40))
    (again,) = texts(await harness.send(DISPATCHER, "/add_district " + "ẞ" * 40))
    (order,) = texts(await harness.say(DISPATCHER, "/order " + "ss" * 40 + " soup"))
    assert added == f"District {'ß' * 40} added."
    assert again == f"District {'ẞ' * 40} already exists."
    assert f"({'ß' * 40}) is queued" in order
    assert_clean(no_tracebacks)


async def test_a_photo_captioned_online_is_a_shift_command(
    harness: Harness, no_tracebacks: pytest.LogCaptureFixture
):
    await add_districts(harness, "North")
    await register(harness, COURIER, "Ann", ["North"])
    await approve_all(harness)
    await harness.send(COURIER, "/offline")
    photo = Message(
        message_id=900,
        date=datetime.now(UTC),
        chat=Chat(id=COURIER, type="private"),
        from_user=harness.user(COURIER),
        photo=[PhotoSize(file_id="f", file_unique_id="u", width=1, height=1)],
        caption="/online",
    )

    sent = await harness._feed(Update(update_id=9000, message=photo))

    assert "You are online." in texts(sent)[0]
    assert_clean(no_tracebacks)


async def test_the_same_page_twice_is_fine(
    harness: Harness, no_tracebacks: pytest.LogCaptureFixture
):
    await add_districts(harness, "North")
    for user in range(100, 112):
        await register(harness, user, f"C{user}", ["North"])
    listing = (await harness.send(DISPATCHER, "/couriers"))[0]
    following = buttons(listing)[-1][1]

    first = await harness.tap(DISPATCHER, following)
    second = await harness.tap(DISPATCHER, following, _same_message(first))

    assert isinstance(second[0], AnswerCallbackQuery)
    assert any(isinstance(r, EditMessageText) for r in second)
    assert_clean(no_tracebacks)
    assert "could not be sent" not in no_tracebacks.text  # the edit changing nothing is fine


def _same_message(requests: list) -> Message:
    """The message a page turn edited, as a second tap on it carries it."""
    edit = next(r for r in requests if isinstance(r, EditMessageText))
    return Message(
        message_id=edit.message_id,
        date=datetime.now(UTC),
        chat=Chat(id=int(edit.chat_id or 0), type="private"),
        text=edit.text,
    )


async def test_admins_cannot_be_given_strange_ids(harness: Harness):
    (reply,) = texts(await harness.send(ADMIN, "/add_dispatcher 1234567890123456789012"))
    assert reply.startswith("Please write it like this: /add_dispatcher")
