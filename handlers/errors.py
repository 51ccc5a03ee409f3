"""The one place where domain errors become polite answers, and bugs become an apology."""

import logging
from collections.abc import Callable
from typing import Any

from aiogram import Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import CallbackQuery, ErrorEvent, Message
from aiogram.utils.i18n import gettext as _

from handlers.texts import quote
from services.errors import DomainError

log = logging.getLogger(__name__)

USAGE: dict[str, Callable[[], str]] = {
    "order": lambda: _("/order &lt;district&gt; &lt;what to deliver&gt;"),
    "track": lambda: _("/track &lt;order number&gt;, for example /track 12"),
    "cancel_order": lambda: _("/cancel_order &lt;order number&gt;, for example /cancel_order 12"),
    "reassign": lambda: _(
        "/reassign &lt;order number&gt; [courier number]: to that courier, or back to the queue"
    ),
    "courier": lambda: _("/courier &lt;courier number&gt;, for example /courier 3"),
    "add_district": lambda: _("/add_district &lt;name&gt;"),
    "add_dispatcher": lambda: _("/add_dispatcher &lt;Telegram id&gt;"),
    "remove_dispatcher": lambda: _("/remove_dispatcher &lt;Telegram id&gt;"),
}

MESSAGES: dict[str, Callable[[dict[str, Any]], str]] = {
    "usage": lambda p: _("Please write it like this: {usage}").format(usage=USAGE[p["command"]]()),
    "dispatcher_only": lambda p: _("Only dispatchers can do that."),
    "admin_only": lambda p: _("Only admins can do that."),
    "courier_only": lambda p: _("This is for registered couriers. Join with /register."),
    "district_name_length": lambda p: _("A district name needs 1 to 64 characters."),
    "courier_name_length": lambda p: _("A name needs 1 to 64 characters. Please send it again."),
    "description_length": lambda p: _("An order needs a description of 1 to 1000 characters."),
    "no_districts": lambda p: _("Choose at least one district, then tap Done."),
    "district_not_found": lambda p: _("That district no longer exists. Please start again."),
    "district_unknown": lambda p: _("I don't know that district. See /districts."),
    "district_exists": lambda p: _("District {name} already exists.").format(name=quote(p["name"])),
    "already_registered": lambda p: _("You are already registered. See /me."),
    "not_pending": lambda p: _("Courier #{id} is not waiting for approval any more.").format(
        id=p["courier_id"]
    ),
    "courier_pending": lambda p: _("Your registration is waiting for a dispatcher's approval."),
    "courier_blocked": lambda p: _("Your courier account is blocked. Talk to a dispatcher."),
    "courier_not_found": lambda p: _("There is no courier #{id}. See /couriers.").format(
        id=p["courier_id"]
    ),
    "courier_unavailable": lambda p: _(
        "Courier #{id} ({name}) can't take it: they must be active, online and free."
    ).format(id=p["courier_id"], name=quote(p["name"])),
    "order_not_found": lambda p: _("There is no order #{id}.").format(id=p["order_id"]),
    "not_your_order": lambda p: _("Order #{id} is not yours.").format(id=p["order_id"]),
    "order_cancelled": lambda p: _("Order #{id} was cancelled.").format(id=p["order_id"]),
    "order_completed": lambda p: _("Order #{id} is already delivered.").format(id=p["order_id"]),
    "order_changed": lambda p: _(
        "Order #{id} changed just now. Please look again: /track {id}"
    ).format(id=p["order_id"]),
    "order_not_in_progress": lambda p: _(
        "Order #{id} is not in progress, so there is nothing to reassign."
    ).format(id=p["order_id"]),
    "already_assigned_to": lambda p: _("Order #{id} is already with courier #{courier}.").format(
        id=p["order_id"], courier=p["courier_id"]
    ),
    "invite_invalid": lambda p: _(
        "This invite link is used up or expired. Ask a dispatcher for a new one, or /register."
    ),
    "already_staff": lambda p: _("{id} is already staff.").format(id=p["telegram_id"]),
    "cannot_revoke_admin": lambda p: _(
        "{id} is an admin. Admins are set in ADMIN_IDS, not here."
    ).format(id=p["telegram_id"]),
    "dispatcher_not_found": lambda p: _("{id} is not a dispatcher.").format(id=p["telegram_id"]),
}


def explain(error: DomainError) -> str:
    render = MESSAGES.get(error.code)
    if render is None:
        log.error("no text for domain error %s", error.code)
        return _("That can't be done right now.")
    return render(error.params)


async def _tell(event: ErrorEvent, text: str) -> None:
    """Answer where the user is looking: an alert on a button, a reply to a message."""
    update = event.update
    try:
        if isinstance(update.callback_query, CallbackQuery):
            await update.callback_query.answer(text, show_alert=True)
        elif isinstance(update.message, Message):
            await update.message.answer(text)
    except TelegramAPIError as error:
        log.warning("update %s: could not explain an error: %s", update.update_id, error)


def build_router() -> Router:
    router = Router(name="errors")

    @router.error(ExceptionTypeFilter(DomainError))
    async def domain_error(event: ErrorEvent) -> None:
        assert isinstance(event.exception, DomainError)
        log.info("update %s refused: %s", event.update.update_id, event.exception.code)
        await _tell(event, explain(event.exception))

    @router.error()
    async def unexpected(event: ErrorEvent) -> None:
        log.exception("update %s failed", event.update.update_id, exc_info=event.exception)
        await _tell(event, _("Sorry, something went wrong on our side. Please try again."))

    return router
