"""Last resort: whatever no other handler took still gets a polite answer."""

from aiogram import F, Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _


async def stale_button(callback: CallbackQuery) -> None:
    """No spinner left behind: an old, foreign or forged button is answered too."""
    await callback.answer(_("This button is out of date."), show_alert=True)


async def not_understood(message: Message) -> None:
    await message.answer(_("Sorry, I don't understand that. See /help."))


def build_router() -> Router:
    router = Router(name="fallback")
    router.callback_query.register(stale_button)
    router.message.register(not_understood, F.chat.type == "private")
    return router
