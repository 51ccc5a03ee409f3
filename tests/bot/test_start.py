"""/start, /help and /cancel for every role, in English and Russian."""

from aiogram.methods import SetMyCommands

from tests.bot.harness import Harness, texts
from tests.helpers import ADMIN, DISPATCHER, STRANGER


async def test_start_tells_a_stranger_how_to_join_and_their_id(harness: Harness):
    sent = await harness.send(STRANGER, "/start")

    (reply,) = texts(sent)
    assert "/register" in reply
    assert f"<code>{STRANGER}</code>" in reply
    menus = [r for r in sent if isinstance(r, SetMyCommands)]
    assert menus
    assert {c.command for c in menus[0].commands} == {"register", "help", "cancel"}


async def test_start_greets_an_admin_by_role_with_the_admin_menu(harness: Harness):
    sent = await harness.send(ADMIN, "/start")

    assert "admin" in texts(sent)[0]
    commands = {c.command for c in next(r for r in sent if isinstance(r, SetMyCommands)).commands}
    assert {"order", "stats", "add_dispatcher", "dispatchers"} <= commands
    assert "register" not in commands


async def test_russian_users_get_russian(harness: Harness):
    sent = await harness.send(DISPATCHER, "/start", language="ru")

    assert "диспетчер" in texts(sent)[0]


async def test_other_languages_fall_back_to_the_default(harness: Harness):
    sent = await harness.send(STRANGER, "/start", language="de")

    assert "Hello" in texts(sent)[0]


async def test_user_names_are_escaped(harness: Harness):
    sent = await harness.send(STRANGER, "/start", name="<b>Eve</b> & co")

    assert "&lt;b&gt;Eve&lt;/b&gt; &amp; co" in texts(sent)[0]


async def test_help_lists_the_commands_of_my_role(harness: Harness):
    (courier_help,) = texts(await harness.send(STRANGER, "/help"))
    (dispatcher_help,) = texts(await harness.send(DISPATCHER, "/help"))

    assert "/register" in courier_help
    assert "/order" not in courier_help
    assert "/order" in dispatcher_help
    assert "/add_dispatcher" not in dispatcher_help


async def test_cancel_outside_a_dialog_says_so(harness: Harness):
    (reply,) = texts(await harness.send(STRANGER, "/cancel"))
    assert "nothing to cancel" in reply


async def test_cancel_leaves_a_dialog(harness: Harness):
    await harness.send(ADMIN, "/add_district North")
    await harness.send(STRANGER, "/register")

    (left,) = texts(await harness.send(STRANGER, "/cancel"))
    (after,) = texts(await harness.send(STRANGER, "Ann"))

    assert left == "Cancelled."
    assert "/help" in after  # the name is no longer expected
