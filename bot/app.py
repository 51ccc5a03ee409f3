"""The composition root: builds every long-lived object once and wires them together."""

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation
from aiogram.utils.backoff import Backoff, BackoffConfig
from aiogram.utils.i18n import I18n
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.requests import TolerateUnchangedEdits
from bot.sender import OutboxSender
from bot.settings import Settings
from db import migrate
from db.engine import create_engine
from db.uow import UnitOfWorkFactory
from handlers import build_router, menu
from handlers.context import HandlerConfig
from handlers.i18n import PoI18n, UserLanguageMiddleware
from handlers.middlewares import UnitOfWorkMiddleware, UpdateLogMiddleware
from services import orders, staff

log = logging.getLogger(__name__)
STARTUP_BACKOFF = BackoffConfig(min_delay=1.0, max_delay=30.0, factor=1.5, jitter=0.1)


@dataclass
class App:
    settings: Settings
    engine: AsyncEngine
    uow_factory: UnitOfWorkFactory
    i18n: I18n
    bot: Bot
    dispatcher: Dispatcher


def build_bot(settings: Settings, session: BaseSession | None = None) -> Bot:
    """A Bot on the configured API server; tests pass a session of their own."""
    if session is None:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    session.middleware(TolerateUnchangedEdits())
    return Bot(
        token=settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


def build_dispatcher(settings: Settings, uow_factory: UnitOfWorkFactory, i18n: I18n) -> Dispatcher:
    dispatcher = Dispatcher(
        storage=MemoryStorage(),
        # One update at a time per user and chat, so quick double taps cannot race a dialog.
        events_isolation=SimpleEventIsolation(),
        config=HandlerConfig(courier_approval=settings.courier_approval, zone=settings.zone),
    )
    dispatcher.update.outer_middleware(UpdateLogMiddleware())
    UserLanguageMiddleware(i18n).setup(dispatcher)
    dispatcher.update.outer_middleware(UnitOfWorkMiddleware(uow_factory))
    dispatcher.include_router(build_router())
    return dispatcher


def build_app(settings: Settings) -> App:
    engine = create_engine(settings.database_url)
    uow_factory = UnitOfWorkFactory(engine)
    i18n = PoI18n(default_locale=settings.default_locale)
    return App(
        settings=settings,
        engine=engine,
        uow_factory=uow_factory,
        i18n=i18n,
        bot=build_bot(settings),
        dispatcher=build_dispatcher(settings, uow_factory, i18n),
    )


async def prepare_database(app: App) -> None:
    if app.settings.migrate_on_start:
        await migrate.upgrade(app.settings.database_url)
    await staff.sync_admins(app.uow_factory(), app.settings.admin_ids)
    if not app.settings.admin_ids:
        log.warning("ADMIN_IDS is empty: nobody can add dispatchers or approve couriers")


async def wait_for_telegram(bot: Bot) -> None:
    """getMe until it answers. aiogram's polling asks once, without retrying, and caches it."""
    backoff = Backoff(config=STARTUP_BACKOFF)
    while True:
        try:
            me = await bot.me()
        except TelegramRetryAfter as error:
            await asyncio.sleep(error.retry_after)
        except (TelegramNetworkError, TelegramServerError) as error:
            log.warning(
                "Telegram is unreachable (%s); retrying in %.1f s", error, backoff.next_delay
            )
            await backoff.asleep()
        else:
            log.info("running as @%s (id %s)", me.username, me.id)
            return


def start_scheduler(app: App) -> AsyncIOScheduler:
    """In-memory job store: each process schedules its own jobs and shares none."""
    scheduler = AsyncIOScheduler(timezone=app.settings.zone)

    async def sweep() -> None:
        assigned = await orders.sweep_queue(app.uow_factory())
        if assigned:
            log.warning("the sweep assigned %s queued orders", assigned)

    scheduler.add_job(
        sweep,
        "interval",
        seconds=app.settings.sweep_interval_seconds,
        id="queue-sweep",
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    return scheduler


async def run_polling(app: App) -> None:
    """Start up, poll until SIGINT or SIGTERM, and always release the session and the engine."""
    try:
        await prepare_database(app)
        await wait_for_telegram(app.bot)
        await menu.set_default_menus(app.bot, app.i18n)
        await _poll_with_background_jobs(app)
    finally:
        await app.bot.session.close()
        await app.engine.dispose()


async def _poll_with_background_jobs(app: App) -> None:
    sender = OutboxSender(app.bot, app.uow_factory, app.i18n, app.settings.outbox_poll_seconds)
    sender_task = asyncio.create_task(sender.run(), name="outbox-sender")
    scheduler = start_scheduler(app)
    try:
        await app.dispatcher.start_polling(app.bot, handle_signals=True, close_bot_session=False)
    finally:
        scheduler.shutdown(wait=False)
        sender_task.cancel()
        with suppress(asyncio.CancelledError):
            await sender_task
