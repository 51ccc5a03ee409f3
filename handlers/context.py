"""What handlers need to know from the settings, without depending on the bot package."""

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import get_i18n


@dataclass(frozen=True, slots=True)
class HandlerConfig:
    courier_approval: bool
    zone: ZoneInfo
    nearest: bool = True  # DISPATCH_RULE=nearest: couriers are asked where they are


def current_locale() -> str:
    """The language this update is answered in; stored with what the user will be told later."""
    return get_i18n().current_locale
