"""The command menu each person sees, set with setMyCommands scopes."""

import logging
from collections.abc import Iterable

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeChat,
    BotCommandScopeDefault,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import lazy_gettext as __
from babel.support import LazyProxy

from handlers.i18n import speaking
from services.read_models import Identity

log = logging.getLogger(__name__)

EVERYONE = {
    "start": __("Start, and see your Telegram id"),
    "help": __("What I can do for you"),
    "register": __("Join as a courier"),
    "cancel": __("Leave the current dialog"),
}
COURIER = {
    "me": __("My card"),
    "online": __("Start my shift"),
    "offline": __("End my shift"),
    "location": __("Share where I am"),
    "mydistricts": __("Change my districts"),
}
DISPATCHER = {
    "order": __("Post an order: /order <district> <what>"),
    "orders": __("Orders in progress and waiting"),
    "track": __("An order's status: /track <number>"),
    "cancel_order": __("Cancel an order"),
    "reassign": __("Give an order to another courier or the queue"),
    "couriers": __("Couriers and their state"),
    "courier": __("A courier's card: /courier <number>"),
    "pending": __("Couriers waiting for approval"),
    "offline_courier": __("End a courier's shift; their order goes back to the queue"),
    "block": __("Block a courier"),
    "unblock": __("Unblock a courier"),
    "districts": __("Districts"),
    "add_district": __("Add a district"),
    "stats": __("Today's statistics"),
    "invite": __("A one-time courier invite link"),
}
ADMIN = {
    "dispatchers": __("Staff"),
    "add_dispatcher": __("Make someone a dispatcher"),
    "remove_dispatcher": __("Remove a dispatcher"),
}


def commands_for(identity: Identity) -> dict[str, LazyProxy]:
    commands: dict[str, LazyProxy] = {}
    if identity.courier is not None:
        commands |= COURIER
    if identity.is_dispatcher:
        commands |= DISPATCHER
    if identity.is_admin:
        commands |= ADMIN
    if identity.courier is None and not identity.is_dispatcher:
        commands |= {"register": EVERYONE["register"]}
    return commands | {"help": EVERYONE["help"], "cancel": EVERYONE["cancel"]}


async def _set(
    bot: Bot,
    i18n: I18n,
    commands: dict[str, LazyProxy],
    scope: BotCommandScopeChat | BotCommandScopeDefault | BotCommandScopeAllGroupChats,
) -> None:
    """The menu in every language we speak, and the default language for everyone else."""
    languages: Iterable[str | None] = [None, *i18n.available_locales]
    for language in languages:
        with speaking(i18n, language):
            menu = [
                BotCommand(command=name, description=str(text)) for name, text in commands.items()
            ]
        await bot.set_my_commands(menu, scope=scope, language_code=language)


async def set_default_menus(bot: Bot, i18n: I18n) -> None:
    """What strangers see in private chats, and dispatchers' commands in groups."""
    await _set(bot, i18n, EVERYONE, BotCommandScopeDefault())
    await _set(bot, i18n, DISPATCHER | {"help": EVERYONE["help"]}, BotCommandScopeAllGroupChats())


async def set_personal_menu(bot: Bot, i18n: I18n, identity: Identity) -> None:
    """Best effort: a menu is a convenience, never a reason to fail the user's request."""
    try:
        await _set(
            bot, i18n, commands_for(identity), BotCommandScopeChat(chat_id=identity.telegram_id)
        )
    except TelegramAPIError as error:
        log.warning("could not set the menu of user %s: %s", identity.telegram_id, error)
