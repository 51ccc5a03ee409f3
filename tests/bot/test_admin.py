"""Admins manage dispatchers."""

from aiogram.methods import SetMyCommands

from tests.bot.harness import Harness, texts
from tests.helpers import ADMIN, DISPATCHER


async def test_admin_adds_lists_and_removes_dispatchers(harness: Harness):
    sent = await harness.send(ADMIN, "/add_dispatcher 555")
    assert texts(sent) == ["555 is now a dispatcher."]
    menu = next(r for r in sent if isinstance(r, SetMyCommands))
    assert "order" in {c.command for c in menu.commands}

    (listing,) = texts(await harness.send(ADMIN, "/dispatchers"))
    assert "<code>555</code> · dispatcher" in listing
    assert f"<code>{ADMIN}</code> · admin" in listing

    assert texts(await harness.send(ADMIN, "/remove_dispatcher 555")) == [
        "555 is no longer a dispatcher."
    ]
    (again,) = texts(await harness.send(ADMIN, "/remove_dispatcher 555"))
    assert again == "555 is not a dispatcher."


async def test_dispatchers_cannot_manage_staff(harness: Harness):
    for command in ("/add_dispatcher 5", "/remove_dispatcher 5", "/dispatchers"):
        assert texts(await harness.send(DISPATCHER, command)) == ["Only admins can do that."]


async def test_admin_mistakes_are_explained(harness: Harness):
    (twice,) = texts(await harness.send(ADMIN, f"/add_dispatcher {DISPATCHER}"))
    assert twice == f"{DISPATCHER} is already staff."
    (admin,) = texts(await harness.send(ADMIN, f"/remove_dispatcher {ADMIN}"))
    assert "ADMIN_IDS" in admin
    (usage,) = texts(await harness.send(ADMIN, "/add_dispatcher bob"))
    assert usage.startswith("Please write it like this: /add_dispatcher")


async def test_russian_admin(harness: Harness):
    (reply,) = texts(await harness.send(ADMIN, "/add_dispatcher 5", language="ru"))
    assert reply == "5 теперь диспетчер."
