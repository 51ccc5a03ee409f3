"""Translations: English in the code, Russian in a .po file compiled in memory at start."""

import gettext
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import Any

from aiogram.types import ErrorEvent, TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).parent / "locales"
SOURCE_LOCALE = "en"


def _compile(catalog: Catalog) -> gettext.GNUTranslations:
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class PoI18n(I18n):
    """aiogram's I18n reading .po files directly, so no compiled .mo files live in the repo."""

    def __init__(self, default_locale: str) -> None:
        super().__init__(path=LOCALES_DIR, default_locale=default_locale, domain="messages")

    def find_locales(self) -> dict[str, gettext.GNUTranslations]:
        locales = {SOURCE_LOCALE: _compile(Catalog(locale=SOURCE_LOCALE))}
        for po_file in sorted(self.path.glob(f"*/LC_MESSAGES/{self.domain}.po")):
            with po_file.open("rb") as source:
                catalog = read_po(source)
            locales[po_file.parent.parent.name] = _compile(catalog)
        return locales

    @contextmanager
    def context(self) -> Iterator[I18n]:
        """Register as *the* I18n: aiogram's gettext looks up I18n's own context variable,
        and every subclass of it gets a separate one."""
        token = I18n.set_current(self)
        try:
            yield self
        finally:
            I18n.reset_current(token)


@contextmanager
def speaking(i18n: I18n, locale: str | None) -> Iterator[None]:
    """Translate in `locale` outside an update, e.g. in the outbox sender."""
    with i18n.context(), i18n.use_locale(locale or i18n.default_locale):
        yield


def user_of(event: TelegramObject, data: dict[str, Any]) -> User | None:
    """The user behind an event; for an error event, the user of the update that failed."""
    user = data.get("event_from_user")
    if user is None and isinstance(event, ErrorEvent):
        user = getattr(event.update.event, "from_user", None)
    return user if isinstance(user, User) else None


class UserLanguageMiddleware(I18nMiddleware):
    """The user's Telegram language when we speak it, else DEFAULT_LOCALE; errors included."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user = user_of(event, data)
        return locale_for(self.i18n, user.language_code if user else None)


def locale_for(i18n: I18n, language_code: str | None) -> str:
    language = (language_code or "").split("-")[0].lower()
    return language if language in i18n.available_locales else i18n.default_locale
