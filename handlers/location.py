"""Couriers' locations: a courier shares where they are (/location, and when a shift starts),
once or live. A live location's later edits never come here: the front doors hand them to
the position writer (bot.telegram.intake), which keeps them in batches."""

from datetime import UTC, datetime, timedelta

from aiogram import F, Router
from aiogram.filters import Command, StateFilter
from aiogram.types import Message, ReplyKeyboardRemove, Update
from aiogram.utils.i18n import gettext as _

from db.uow import UnitOfWork
from handlers import keyboards
from handlers.context import HandlerConfig
from services import positions
from services.positions import Fix
from services.read_models import Point

LIVE_AT_MOST = 365 * 24 * 3600  # seconds a live location is taken to last, at most


def fix_of(message: Message, update_id: int = 0) -> Fix | None:
    """The position a message from a private chat carries, as Telegram gave it: one-time,
    live (while its period runs), or a live one stopped (an edit without `live_period`).
    None for anything else, a venue or a forwarded location too: not where the sender is."""
    location = message.location
    if location is None or message.from_user is None or message.chat.type != "private":
        return None
    if message.venue is not None or message.forward_origin is not None:
        return None
    at = message.date
    if message.edit_date is not None:
        at = datetime.fromtimestamp(message.edit_date, UTC)
    period = min(location.live_period or 0, LIVE_AT_MOST)  # "indefinitely": a year will do
    return Fix(
        telegram_id=message.from_user.id,
        lat=location.latitude,
        lon=location.longitude,
        at=at,
        live_until=message.date + timedelta(seconds=period) if period else None,
        stopped=message.edit_date is not None and not period,
        update_id=update_id,
    )


def point_of(message: Message) -> Point | None:
    """A place sent in a chat: a venue (with its name and address) or a bare location."""
    if message.venue is not None:
        place = message.venue.location
        address = f"{message.venue.title}, {message.venue.address}"
        return Point(place.latitude, place.longitude, address)
    if message.location is not None:
        return Point(message.location.latitude, message.location.longitude)
    return None


def ask_for_location() -> str:
    return _(
        "📍 Share your live location, so that orders near you come to you first: "
        "📎 → Location → Share My Live Location, for as long as your shift lasts. "
        "Or tap the button below to send where you are now."
    )


async def location_command(message: Message) -> None:
    await message.answer(ask_for_location(), reply_markup=keyboards.send_location())


async def shared(
    message: Message, uow: UnitOfWork, config: HandlerConfig, event_update: Update
) -> None:
    """A courier's location: one sent from the button, or the first of a live one."""
    fix = fix_of(message, event_update.update_id)
    if fix is None:  # a venue, or a location forwarded: somewhere, not where they are
        await message.answer(
            _("That is a place, not where you are. Send your own location, please."),
            reply_markup=keyboards.send_location(),
        )
        return
    kept = await positions.share(uow, fix)
    if kept is None:
        text = _("You are off shift, so I keep no location. Start a shift with /online first.")
    elif kept.live_until is not None and kept.live_until - kept.at > timedelta(days=1):
        text = _("📍 Thanks! I follow your live location until you stop sharing it.")
    elif kept.live_until is not None:
        text = _("📍 Thanks! I follow your live location until {time}.").format(
            time=kept.live_until.astimezone(config.zone).strftime("%H:%M")
        )
    else:
        minutes = round((kept.fresh_until - kept.at).total_seconds() / 60)
        text = _(
            "📍 Thanks! This location counts for {minutes} min. To keep it current, share "
            "your live location: 📎 → Location → Share My Live Location."
        ).format(minutes=minutes)
    await message.answer(text, reply_markup=ReplyKeyboardRemove())


def build_router() -> Router:
    router = Router(name="location")
    router.message.filter(F.chat.type == "private")
    router.message.register(location_command, Command("location"))
    router.message.register(shared, F.location, StateFilter(None))
    return router
