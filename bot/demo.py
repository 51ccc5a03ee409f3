"""`python -m bot demo`: the playground. The bot runs against the embedded Telegram Bot API
emulator, on SQLite in a fresh folder seeded with a small business, and serves a page with
everyone's chat at /playground. No token, no network."""

import secrets
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from bot.settings import Settings

if TYPE_CHECKING:
    from fastapi import APIRouter

    from db.uow import UnitOfWorkFactory
    from playground.telegram import FakeTelegram

BOT_TOKEN = "4242:playground-not-a-real-token"  # 4242: the emulator's bot id
API_TOKEN = "playground-demo-token"
PAGE = "/playground"


def settings() -> Settings:
    """The playground's own settings: nothing of .env, so a real bot's data stays untouched.
    From the environment only what a person may want to change: WEB_PORT, LOG_LEVEL and such."""
    from playground.seed import ADMIN

    # Made by the start (as any SQLite folder is), so a stop during the imports leaves nothing.
    folder = Path(tempfile.gettempdir()) / f"dispatch-playground-{secrets.token_hex(6)}"
    return Settings(
        _env_file=None,
        bot_token=BOT_TOKEN,
        database_url=f"sqlite+aiosqlite:///{folder / 'dispatch.db'}",
        admin_ids=frozenset({ADMIN.id}),
        api_tokens=API_TOKEN,
        shop_webhooks_allow_private=True,  # so that a receiver on this machine can try them
        redis_url=None,
        webhook_url=None,
        webhook_secret=None,
    )


async def play(settings: Settings) -> None:
    """Serve the playground until SIGINT or SIGTERM."""
    from bot.app import build_app
    from bot.serve import run
    from playground.seed import CAST
    from playground.telegram import FakeTelegram, serving

    fake = FakeTelegram(BOT_TOKEN, forgetful=True)
    for person in CAST:
        fake.chats.add(person)
    folder = Path(make_url(settings.database_url).database or "").parent
    try:
        async with serving(fake) as (_, url):
            app = build_app(settings.model_copy(update={"telegram_api_url": url}))
            # Migrated by the start, which a stop signal ends cleanly; seeded once it runs.
            await run(app, Playground(fake, folder, app.uow_factory))
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # a playground leaves nothing behind


class Playground:
    """The page beside the bot; once the bot is ready, seeds the business, says where the page
    is, and everyone says /start."""

    def __init__(
        self, fake: "FakeTelegram", folder: Path, uow_factory: "UnitOfWorkFactory"
    ) -> None:
        self._fake = fake
        self._folder = folder
        self._uow_factory = uow_factory

    def routers(self) -> "Sequence[APIRouter]":
        from playground import web

        return [web.build_router(self._fake, API_TOKEN)]

    async def ready(self, address: str | None) -> None:
        from playground.seed import CAST, seed

        await seed(self._uow_factory)

        print(
            f"\nThe playground is at {address}{PAGE}"
            f"\nThe API's docs are at {address}/docs (token {API_TOKEN})"
            f"\nIts data is in {self._folder} until Ctrl+C stops it.\n",
            flush=True,
        )
        for person in CAST:
            await self._fake.send(person.id, "/start", name=person.name, language=person.language)

    def stopping(self) -> None:
        self._fake.chats.close()
