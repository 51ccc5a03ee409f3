"""How each notice reads, in its recipient's language."""

from dataclasses import dataclass
from datetime import UTC, timedelta
from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from handlers import keyboards
from handlers.texts import (
    courier_label,
    daily_report,
    duration,
    names,
    new_order,
    offer_deadline,
    posted_to,
    quote,
    registration_verdict,
)
from services import clock
from services.notices import (
    CourierBlocked,
    CourierUnblocked,
    CourierUnreachable,
    DailyReport,
    DispatchAccepted,
    DispatchAssigned,
    DispatchCompleted,
    DispatchOverdue,
    DispatchRefused,
    DispatchRequeued,
    Notice,
    OfferAccepted,
    OfferRefused,
    OffersMissed,
    OrderAssigned,
    OrderOffered,
    OrderOverdue,
    OrderPlace,
    OrderPosted,
    OrderWithdrawn,
    PlaceRole,
    RegistrationApproved,
    RegistrationClosed,
    RegistrationRejected,
    RegistrationRequest,
    ShiftEnded,
    WithdrawReason,
)


@dataclass(frozen=True, slots=True)
class Rendered:
    """A new message (`text`, `keyboard`), and what becomes of the messages it supersedes:
    `superseded_text` (and `superseded_keyboard`) replace theirs; without a text they only
    lose their buttons."""

    text: str | None
    keyboard: InlineKeyboardMarkup | None = None
    superseded_text: str | None = None
    superseded_keyboard: InlineKeyboardMarkup | None = None
    venue: "Venue | None" = None  # sent as a venue instead of a text


@dataclass(frozen=True, slots=True)
class Venue:
    """A place to send as a venue (sendVenue): a tap on it opens navigation."""

    lat: float
    lon: float
    title: str
    address: str


UTC_ZONE = ZoneInfo("UTC")


def render(notice: Notice, zone: ZoneInfo = UTC_ZONE) -> Rendered:
    """Call inside the recipient's locale (`handlers.i18n.speaking`); times are told in
    `zone`, the business's."""
    match notice:
        case OrderAssigned():
            return Rendered(
                new_order(notice.order_id, notice.district, notice.description),
                keyboards.complete_order(notice.order_id),
            )
        case OrderOffered():
            if notice.expires_at <= clock.utcnow():
                return Rendered(None)  # ran out before it could go: no dead buttons to show
            order = new_order(notice.order_id, notice.district, notice.description)
            deadline = offer_deadline(notice.expires_at.astimezone(UTC), zone)
            return Rendered(f"{order}\n\n{deadline}", keyboards.answer_offer(notice.order_id))
        case OrderPlace():
            if notice.expires_at is not None and notice.expires_at <= clock.utcnow():
                return Rendered(None)  # its offer ran out before it could go
            return Rendered(None, venue=_venue(notice))
        case OfferAccepted():
            return Rendered(
                None,
                superseded_text=new_order(notice.order_id, notice.district, notice.description),
                superseded_keyboard=keyboards.complete_order(notice.order_id),
            )
        case OfferRefused():
            if notice.expired:
                refused = _("⌛ Order #{id}: the offer expired.")
            else:
                refused = _("✖️ Order #{id}: you declined it.")
            return Rendered(None, superseded_text=refused.format(id=notice.order_id))
        case OffersMissed():
            return Rendered(
                _(
                    "You let {count} offers in a row run out, so your shift is over. "
                    "Start a new one with /online when you can take orders."
                ).format(count=notice.missed)
            )
        case OrderWithdrawn():
            return Rendered(_withdrawn(notice))
        case RegistrationApproved():
            return Rendered(
                _("You're approved! You are online: orders of your districts will come here.")
            )
        case RegistrationRejected():
            return Rendered(_("Sorry, your courier registration was declined."))
        case ShiftEnded():
            return Rendered(
                _("A dispatcher ended your shift. Start a new one with /online when you can.")
            )
        case CourierBlocked():
            return Rendered(_("A dispatcher blocked your courier account. No orders will come."))
        case CourierUnblocked():
            return Rendered(_("You're unblocked. Start a shift with /online."))
        case OrderPosted():
            return Rendered(
                posted_to(
                    notice.order_id,
                    notice.district,
                    notice.courier_id,
                    notice.courier_name,
                    notice.position,
                    offered=notice.offered,
                    metres=notice.distance_m,
                )
            )
        case DispatchAccepted():
            return Rendered(
                _("👍 Order #{id} accepted by {name} (#{courier_id}) in {time}.").format(
                    id=notice.order_id,
                    name=quote(notice.courier_name),
                    courier_id=notice.courier_id,
                    time=duration(timedelta(seconds=notice.seconds)),
                )
            )
        case DispatchRefused():
            return Rendered(
                _(
                    "Order #{id}: declined or let run out by every courier free for it "
                    "({count} in all); waiting, place {place}."
                ).format(id=notice.order_id, count=notice.couriers, place=notice.position)
            )
        case DispatchAssigned():
            return Rendered(
                _("Order #{id} went to {courier}.").format(
                    id=notice.order_id,
                    courier=courier_label(
                        notice.courier_name, notice.courier_id, notice.distance_m
                    ),
                )
            )
        case DispatchCompleted():
            return Rendered(
                _("✅ Order #{id} delivered by {name} (#{courier_id}) in {time}.").format(
                    id=notice.order_id,
                    name=quote(notice.courier_name),
                    courier_id=notice.courier_id,
                    time=duration(timedelta(seconds=notice.seconds)),
                )
            )
        case DispatchRequeued():
            return Rendered(
                _("Order #{id} is back in the queue, place {place}.").format(
                    id=notice.order_id, place=notice.position
                )
            )
        case RegistrationRequest():
            return Rendered(
                _("New courier #{id} {name} asks to join. Districts: {districts}.").format(
                    id=notice.courier_id,
                    name=quote(notice.name),
                    districts=names(notice.districts),
                ),
                keyboards.decide_registration(notice.courier_id),
            )
        case RegistrationClosed():
            verdict = registration_verdict(notice.courier_id, notice.name, notice.approved)
            return Rendered(None, superseded_text=verdict)
        case OrderOverdue():
            return Rendered(
                _(
                    "⏰ Order #{id} has been with you for {minutes} min. Tap ✅ Complete once it "
                    "is delivered."
                ).format(id=notice.order_id, minutes=notice.minutes)
            )
        case DispatchOverdue():
            return Rendered(
                _("⏰ Order #{id} has been with {name} (#{courier_id}) for {minutes} min.").format(
                    id=notice.order_id,
                    name=quote(notice.courier_name),
                    courier_id=notice.courier_id,
                    minutes=notice.minutes,
                )
            )
        case CourierUnreachable():
            return Rendered(
                _(
                    "Order #{id}: {name} (#{courier_id}) could not be reached (they blocked "
                    "the bot), so their shift is over and the order moves on."
                ).format(
                    id=notice.order_id,
                    name=quote(notice.courier_name),
                    courier_id=notice.courier_id,
                )
            )
        case DailyReport():
            return Rendered(daily_report(notice.stats))


def _venue(notice: OrderPlace) -> Venue:
    """Telegram shows a venue's title and address as plain text: nothing is escaped."""
    if notice.role is PlaceRole.PICKUP:
        title = _("📦 Pickup · order #{id}")
    else:
        title = _("🏁 Drop-off · order #{id}")
    address = notice.address or f"{notice.lat:.5f}, {notice.lon:.5f}"
    return Venue(notice.lat, notice.lon, title.format(id=notice.order_id), address)


def _withdrawn(notice: OrderWithdrawn) -> str:
    match notice.reason:
        case WithdrawReason.CANCELLED:
            text = _("Order #{id} was cancelled. You don't need to deliver it.")
        case WithdrawReason.REASSIGNED:
            text = _("Order #{id} was given to someone else. You don't need to deliver it.")
        case WithdrawReason.RETURNED:
            text = _("Order #{id} went back to the queue. You don't need to deliver it.")
        case WithdrawReason.COMPLETED:
            text = _("Order #{id} was marked delivered.")
    return text.format(id=notice.order_id)
