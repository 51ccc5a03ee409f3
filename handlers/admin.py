"""Admin commands: who is a dispatcher."""

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from db.uow import UnitOfWork
from handlers import menu, texts
from handlers.arguments import numbers
from services import staff


async def add_dispatcher(
    message: Message, command: CommandObject, uow: UnitOfWork, bot: Bot, i18n: I18n
) -> None:
    assert message.from_user is not None
    (telegram_id,) = numbers(command, 1, 1)
    await staff.grant_dispatcher(uow, message.from_user.id, telegram_id)
    await message.answer(_("{id} is now a dispatcher.").format(id=telegram_id))
    await menu.set_personal_menu(bot, i18n, await staff.identify(uow, telegram_id))


async def remove_dispatcher(
    message: Message, command: CommandObject, uow: UnitOfWork, bot: Bot, i18n: I18n
) -> None:
    assert message.from_user is not None
    (telegram_id,) = numbers(command, 1, 1)
    await staff.revoke_dispatcher(uow, message.from_user.id, telegram_id)
    await message.answer(_("{id} is no longer a dispatcher.").format(id=telegram_id))
    await menu.set_personal_menu(bot, i18n, await staff.identify(uow, telegram_id))


async def list_staff(message: Message, uow: UnitOfWork) -> None:
    assert message.from_user is not None
    for part in texts.staff(await staff.list_staff(uow, message.from_user.id)):
        await message.answer(part)


def build_router() -> Router:
    router = Router(name="admin")
    router.message.register(add_dispatcher, Command("add_dispatcher"))
    router.message.register(remove_dispatcher, Command("remove_dispatcher"))
    router.message.register(list_staff, Command("dispatchers"))
    return router
