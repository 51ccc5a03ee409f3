"""The one place where domain errors become polite answers, and bugs become an apology."""

import logging
from collections.abc import Callable
from typing import Any

from aiogram import Router
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import CallbackQuery, ErrorEvent, Message
from aiogram.utils.i18n import gettext as _
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from db.uow import AlreadyDone, DatabaseLocked
from handlers.texts import quote
from services.errors import DomainError, ErrorCode

log = logging.getLogger(__name__)
# Telegram did not take an answer for reasons of its own, or of the user's.
ANSWER_LOST = (
    TelegramRetryAfter,
    TelegramServerError,
    TelegramNetworkError,
    TelegramForbiddenError,
)

USAGE: dict[str, Callable[[], str]] = {
    "order": lambda: _("/order &lt;district&gt; &lt;what to deliver&gt;"),
    "track": lambda: _("/track &lt;order number&gt;, for example /track 12"),
    "cancel_order": lambda: _("/cancel_order &lt;order number&gt;, for example /cancel_order 12"),
    "reassign": lambda: _(
        "/reassign &lt;order number&gt; [courier number]: to that courier, or back to the queue"
    ),
    "courier": lambda: _("/courier &lt;courier number&gt;, for example /courier 3"),
    "offline_courier": lambda: _("/offline_courier &lt;courier number&gt;"),
    "block": lambda: _("/block &lt;courier number&gt;"),
    "unblock": lambda: _("/unblock &lt;courier number&gt;"),
    "add_district": lambda: _("/add_district &lt;name&gt;"),
    "add_dispatcher": lambda: _("/add_dispatcher &lt;Telegram id&gt;"),
    "remove_dispatcher": lambda: _("/remove_dispatcher &lt;Telegram id&gt;"),
}

# Something the bot needs was away for a moment (the database, Redis, the network): the
# update is handled again later, nobody is told it failed.
TRANSIENT = (
    OSError,
    TimeoutError,
    InterfaceError,
    OperationalError,
    PoolTimeout,
    DatabaseLocked,
    RedisConnectionError,
    RedisTimeoutError,
)
# What the database says of a request itself: trying again would not change it.
REFUSED_BY_THE_DATABASE = (IntegrityError, DataError, ProgrammingError)


def not_for_now(error: BaseException) -> bool:
    """Away for a moment, or done already by a copy of this update."""
    return transient(error) or isinstance(error, AlreadyDone)


def transient(error: BaseException) -> bool:
    """Whether `error` says something was away, not that something is wrong: asyncpg's
    refusals while a server starts, stops or fails over, runs out of connections, or breaks
    a deadlock come as a plain DBAPIError."""
    if isinstance(error, TRANSIENT):
        return True
    return isinstance(error, DBAPIError) and not isinstance(error, REFUSED_BY_THE_DATABASE)


Params = dict[str, Any]
MESSAGES: dict[ErrorCode, Callable[[Params], str]] = {
    ErrorCode.USAGE: lambda p: _("Please write it like this: {usage}").format(
        usage=USAGE[p["command"]]()
    ),
    ErrorCode.DISPATCHER_ONLY: lambda p: _("Only dispatchers can do that."),
    ErrorCode.ADMIN_ONLY: lambda p: _("Only admins can do that."),
    ErrorCode.COURIER_ONLY: lambda p: _("This is for registered couriers. Join with /register."),
    ErrorCode.DISTRICT_NAME_LENGTH: lambda p: _(
        "A district name needs {min} to {max} visible characters."
    ).format(**p),
    ErrorCode.COURIER_NAME_LENGTH: lambda p: _(
        "A name needs {min} to {max} visible characters. Please send it again."
    ).format(**p),
    ErrorCode.DESCRIPTION_LENGTH: lambda p: _(
        "An order needs a description of {min} to {max} characters."
    ).format(**p),
    ErrorCode.NO_DISTRICTS: lambda p: _("Choose at least one district, then tap Done."),
    ErrorCode.DISTRICT_NOT_FOUND: lambda p: _(
        "That district no longer exists. Please start again."
    ),
    ErrorCode.DISTRICT_UNKNOWN: lambda p: _("I don't know that district. See /districts."),
    ErrorCode.DISTRICT_EXISTS: lambda p: _("District {name} already exists.").format(
        name=quote(p["name"])
    ),
    ErrorCode.OFFER_ACCEPTED: lambda p: _("You already accepted order #{id}.").format(
        id=p["order_id"]
    ),
    ErrorCode.OFFER_DECLINED: lambda p: _("You declined order #{id}.").format(id=p["order_id"]),
    ErrorCode.OFFER_EXPIRED: lambda p: _("This offer has expired."),
    ErrorCode.OFFER_WITHDRAWN: lambda p: _("This offer was taken back."),
    ErrorCode.ALREADY_REGISTERED: lambda p: _("You are already registered. See /me."),
    ErrorCode.NOT_PENDING: lambda p: _(
        "Courier #{id} is not waiting for approval any more."
    ).format(id=p["courier_id"]),
    ErrorCode.COURIER_PENDING: lambda p: _(
        "Your registration is waiting for a dispatcher's approval."
    ),
    ErrorCode.COURIER_BLOCKED: lambda p: _(
        "Your courier account is blocked. Talk to a dispatcher."
    ),
    ErrorCode.ALREADY_BLOCKED: lambda p: _("Courier #{id} ({name}) is already blocked.").format(
        id=p["courier_id"], name=quote(p["name"])
    ),
    ErrorCode.COURIER_NOT_BLOCKED: lambda p: _("Courier #{id} ({name}) is not blocked.").format(
        id=p["courier_id"], name=quote(p["name"])
    ),
    ErrorCode.COURIER_NOT_FOUND: lambda p: _("There is no courier #{id}. See /couriers.").format(
        id=p["courier_id"]
    ),
    ErrorCode.COURIER_UNAVAILABLE: lambda p: _(
        "Courier #{id} ({name}) can't take it: they must be active, online and free."
    ).format(id=p["courier_id"], name=quote(p["name"])),
    ErrorCode.ORDER_NOT_FOUND: lambda p: _("There is no order #{id}.").format(id=p["order_id"]),
    ErrorCode.NOT_YOUR_ORDER: lambda p: _("Order #{id} is not yours.").format(id=p["order_id"]),
    ErrorCode.ORDER_CANCELLED: lambda p: _("Order #{id} was cancelled.").format(id=p["order_id"]),
    ErrorCode.ORDER_COMPLETED: lambda p: _("Order #{id} is already delivered.").format(
        id=p["order_id"]
    ),
    ErrorCode.ORDER_CHANGED: lambda p: _(
        "Order #{id} changed just now. Please look again: /track {id}"
    ).format(id=p["order_id"]),
    ErrorCode.ALREADY_POSTED: lambda p: _(
        "Order #{id} was posted from this message already."
    ).format(id=p["order_id"]),
    ErrorCode.ORDER_NOT_IN_PROGRESS: lambda p: _(
        "Order #{id} is not with a courier, so there is nothing to take back."
    ).format(id=p["order_id"]),
    ErrorCode.NO_COURIER_FREE: lambda p: _("No courier of {district} is free right now.").format(
        district=quote(p["district"])
    ),
    ErrorCode.ALREADY_LINKED: lambda p: _(
        "This courier is already connected to a Telegram account. Ask a dispatcher."
    ),
    ErrorCode.ALREADY_ASSIGNED_TO: lambda p: _(
        "Order #{id} is already with courier #{courier}."
    ).format(id=p["order_id"], courier=p["courier_id"]),
    ErrorCode.INVITE_IN_GROUP: lambda p: _(
        "Send /invite to me in a private chat: whoever opens the link joins without approval."
    ),
    ErrorCode.INVITE_INVALID: lambda p: _(
        "This invite link is used up or expired. Ask a dispatcher for a new one, or /register."
    ),
    ErrorCode.ALREADY_STAFF: lambda p: _("{id} is already staff.").format(id=p["telegram_id"]),
    ErrorCode.CANNOT_REVOKE_ADMIN: lambda p: _(
        "{id} is an admin. Admins are set in ADMIN_IDS, not here."
    ).format(id=p["telegram_id"]),
    ErrorCode.DISPATCHER_NOT_FOUND: lambda p: _("{id} is not a dispatcher.").format(
        id=p["telegram_id"]
    ),
}


def explain(error: DomainError) -> str:
    return MESSAGES[error.code](error.params)


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

    @router.error(
        lambda event: transient(event.exception) or isinstance(event.exception, AlreadyDone)
    )
    async def not_now(event: ErrorEvent) -> None:
        """Away for a moment, or done already (by a copy of this update): whoever handles the
        update (bot.telegram.inbox) tries again later, or lets it be."""
        raise event.exception

    @router.error(ExceptionTypeFilter(*ANSWER_LOST))
    async def answer_failed(event: ErrorEvent) -> None:
        """Telegram was away, flood-limited us past a brief wait, or the user blocked the bot.
        What they did is saved (services commit before anyone is answered), so they are not
        told it failed: the failure is logged. A 400 is our own mistake and goes on below."""
        log.warning(
            "update %s: the answer could not be sent: %r",
            event.update.update_id,
            event.exception,
        )

    @router.error()
    async def unexpected(event: ErrorEvent) -> None:
        log.exception("update %s failed", event.update.update_id, exc_info=event.exception)
        await _tell(event, _("Sorry, something went wrong on our side. Please try again."))

    return router
