"""How each outbox notice reads, in its recipient's language."""

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from handlers import keyboards
from handlers.texts import duration, names, quote
from services.notifications import Notice, WithdrawReason


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    keyboard: InlineKeyboardMarkup | None = None


def render(notice: Notice, payload: dict[str, Any]) -> Rendered:
    """Call inside the recipient's locale (`i18n.use_locale`)."""
    p = payload
    match notice:
        case Notice.ORDER_ASSIGNED:
            return Rendered(
                _("📦 New order <b>#{id}</b> · {district}\n{description}").format(
                    id=p["order_id"],
                    district=quote(p["district"]),
                    description=quote(p["description"]),
                ),
                keyboards.complete_order(p["order_id"]),
            )
        case Notice.ORDER_WITHDRAWN if p["reason"] == WithdrawReason.CANCELLED:
            return Rendered(
                _("Order #{id} was cancelled. You don't need to deliver it.").format(
                    id=p["order_id"]
                )
            )
        case Notice.ORDER_WITHDRAWN:
            return Rendered(
                _("Order #{id} was given to someone else. You don't need to deliver it.").format(
                    id=p["order_id"]
                )
            )
        case Notice.REGISTRATION_APPROVED:
            return Rendered(
                _("You're approved! You are online: orders of your districts will come here.")
            )
        case Notice.REGISTRATION_REJECTED:
            return Rendered(_("Sorry, your courier registration was declined."))
        case Notice.DISPATCH_ASSIGNED:
            return Rendered(
                _("Order #{id} went to {name} (#{courier_id}).").format(
                    id=p["order_id"], name=quote(p["courier_name"]), courier_id=p["courier_id"]
                )
            )
        case Notice.DISPATCH_COMPLETED:
            return Rendered(
                _("✅ Order #{id} delivered by {name} (#{courier_id}) in {time}.").format(
                    id=p["order_id"],
                    name=quote(p["courier_name"]),
                    courier_id=p["courier_id"],
                    time=duration(timedelta(seconds=p["seconds"])),
                )
            )
        case Notice.DISPATCH_REQUEUED:
            return Rendered(
                _("Order #{id} is back in the queue, place {place}.").format(
                    id=p["order_id"], place=p["position"]
                )
            )
        case Notice.REGISTRATION_REQUEST:
            return Rendered(
                _("New courier #{id} {name} asks to join. Districts: {districts}.").format(
                    id=p["courier_id"],
                    name=quote(p["name"]),
                    districts=names(p["districts"]),
                ),
                keyboards.decide_registration(p["courier_id"]),
            )
