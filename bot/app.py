"""The composition root: builds every long-lived object once and wires them together.
bot.serve runs what is built here."""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.base import BaseSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import (
    BaseEventIsolation,
    BaseStorage,
    DefaultKeyBuilder,
)
from aiogram.fsm.storage.memory import DisabledEventIsolation, MemoryStorage
from aiogram.fsm.storage.redis import RedisStorage
from aiogram.utils.i18n import I18n
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.metrics import CountTelegramErrors, CountUpdates, Metrics
from bot.settings import Settings
from bot.shops.webhooks import WebhookSender, WebhookSettings
from bot.startup import locked, migrate_or_check, read_only, wait_for_database
from bot.telegram.inbox import InboxSettings, InboxWorker
from bot.telegram.intake import Intake, PositionWriter
from bot.telegram.limits import FloodLimiter, SharedWindows
from bot.telegram.requests import (
    KeepResponseModels,
    KeepToFloodLimits,
    RetryBriefly,
    TolerateUnchangedEdits,
    TransportFailuresAreNetworkErrors,
)
from bot.telegram.sender import OutboxSender, SenderSettings
from db.engine import create_engine, is_locked
from db.uow import DatabaseLocked, DispatchRules, UnitOfWorkFactory
from handlers import build_router
from handlers.context import HandlerConfig
from handlers.i18n import PoI18n, UserLanguageMiddleware
from handlers.middlewares import UnitOfWorkMiddleware, UpdateLogMiddleware
from services import staff

log = logging.getLogger(__name__)
REDIS_TIMEOUT_SECONDS = 10
REDIS_CONNECTIONS = 50


@dataclass
class App:
    settings: Settings
    engine: AsyncEngine
    uow_factory: UnitOfWorkFactory
    i18n: I18n
    bot: Bot  # answers updates; its replies ride out a brief flood wait or outage
    dispatcher: Dispatcher
    sender: OutboxSender  # delivers the outbox through a Bot of its own, sharing the limits
    inbox: InboxWorker  # hands the updates stored by the webhook or the polling to the handlers
    intake: Intake  # where the webhook and the polling put updates: the inbox, or positions
    webhooks: WebhookSender  # tells shops of their orders' changes
    metrics: Metrics = field(default_factory=Metrics)
    redis: Redis | None = None  # shared by several instances: dialogs, locks, flood limits


def build_bot(
    settings: Settings,
    session: BaseSession | None = None,
    *,
    limiter: FloodLimiter | None = None,
    retry_briefly: bool = False,
    metrics: Metrics | None = None,
    timeout: float | None = None,
) -> Bot:
    """A Bot on the configured API server, its requests given up after `timeout` seconds
    (aiogram's 60 by default); tests pass a session of their own."""
    if session is None:
        proxy = settings.telegram_proxy
        session = AiohttpSession(
            api=TelegramAPIServer.from_base(settings.telegram_api_url),
            proxy=proxy.get_secret_value() if proxy else None,
        )
        if timeout is not None:
            session.timeout = timeout
    if retry_briefly:
        session.middleware(RetryBriefly())
    if metrics is not None:
        session.middleware(CountTelegramErrors(metrics))
    session.middleware(KeepResponseModels())
    session.middleware(TolerateUnchangedEdits())
    if limiter is not None:
        session.middleware(KeepToFloodLimits(limiter))
    session.middleware(TransportFailuresAreNetworkErrors())  # innermost: every layer sees it
    return Bot(
        token=settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


def build_dispatcher(
    settings: Settings,
    uow_factory: UnitOfWorkFactory,
    i18n: I18n,
    *,
    redis: Redis | None = None,
    metrics: Metrics | None = None,
) -> Dispatcher:
    storage, isolation = build_storage(redis)
    dispatcher = Dispatcher(
        storage=storage,
        # Each chat's updates already come one at a time, in order, from the inbox
        # (bot.telegram.inbox), on one instance or several: aiogram's own isolation would only
        # add a lock per update.
        events_isolation=isolation,
        config=HandlerConfig(
            courier_approval=settings.courier_approval, zone=settings.zone, nearest=settings.nearest
        ),
    )
    if metrics is not None:
        dispatcher.update.outer_middleware(CountUpdates(metrics))
    dispatcher.update.outer_middleware(UpdateLogMiddleware())
    UserLanguageMiddleware(i18n).setup(dispatcher)
    dispatcher.update.outer_middleware(UnitOfWorkMiddleware(uow_factory))
    dispatcher.include_router(build_router())
    return dispatcher


def build_storage(redis: Redis | None) -> tuple[BaseStorage, BaseEventIsolation]:
    """Where dialogs live: in this process, or in Redis for every instance at once. No event
    isolation: the inbox hands each chat's updates over one at a time (a lock in Redis
    would outlive a killed instance by a minute, holding up its chats)."""
    if redis is None:
        return MemoryStorage(), DisabledEventIsolation()
    keys = DefaultKeyBuilder(prefix="dispatch:fsm", with_bot_id=True)  # bots may share a Redis
    return RedisStorage(redis, key_builder=keys), DisabledEventIsolation()


def build_redis(settings: Settings) -> Redis | None:
    if settings.redis_url is None:
        return None
    # A burst of updates, each taking its user's lock, may want more connections than the
    # pool holds: they wait for one (up to the timeout) rather than fail.
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=REDIS_CONNECTIONS,
        timeout=REDIS_TIMEOUT_SECONDS,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
    )
    return Redis(connection_pool=pool)


def build_sender(
    settings: Settings,
    uow_factory: UnitOfWorkFactory,
    i18n: I18n,
    limiter: FloodLimiter,
    metrics: Metrics,
) -> OutboxSender:
    """The sender, with a Bot of its own whose requests end within the margin its lease
    keeps (SenderSettings.send_seconds)."""
    sender_settings = SenderSettings(
        poll_seconds=settings.outbox_poll_seconds,
        lease=timedelta(seconds=settings.outbox_lease_seconds),
        zone=settings.zone,
    )
    bot = build_bot(
        settings, limiter=limiter, metrics=metrics, timeout=sender_settings.send_seconds
    )
    return OutboxSender(bot, uow_factory, i18n, limiter, sender_settings)


def build_inbox(
    settings: Settings, dispatcher: Dispatcher, bot: Bot, uow_factory: UnitOfWorkFactory
) -> InboxWorker:
    inbox_settings = InboxSettings(
        poll_seconds=settings.outbox_poll_seconds,
        lease=timedelta(seconds=settings.inbox_lease_seconds),
    )
    return InboxWorker(dispatcher, bot, uow_factory, inbox_settings)


def build_app(settings: Settings) -> App:
    engine = create_engine(settings.database_url)
    rules = DispatchRules(
        settings.offer_seconds,
        settings.offer_misses_to_offline,
        nearest=settings.nearest,
        location_fresh_seconds=settings.location_fresh_seconds,
    )
    uow_factory = UnitOfWorkFactory(engine, rules=rules)
    i18n = PoI18n(default_locale=settings.default_locale)
    metrics = Metrics()
    uow_factory.on_offers(metrics.count_offers)
    redis = build_redis(settings)
    shared = SharedWindows(redis, settings.send_rate_limit) if redis is not None else None
    limiter = FloodLimiter(settings.send_rate_limit, shared=shared)
    bot = build_bot(settings, limiter=limiter, retry_briefly=True, metrics=metrics)
    dispatcher = build_dispatcher(settings, uow_factory, i18n, redis=redis, metrics=metrics)
    inbox = build_inbox(settings, dispatcher, bot, uow_factory)
    return App(
        settings=settings,
        engine=engine,
        uow_factory=uow_factory,
        i18n=i18n,
        bot=bot,
        dispatcher=dispatcher,
        sender=build_sender(settings, uow_factory, i18n, limiter, metrics),
        inbox=inbox,
        intake=Intake(inbox, PositionWriter(uow_factory, metrics)),
        webhooks=WebhookSender(
            uow_factory,
            WebhookSettings(allow_private=settings.shop_webhooks_allow_private),
            metrics,
        ),
        metrics=metrics,
        redis=redis,
    )


async def prepare_database(app: App, *, migrate: bool | None = None) -> None:
    """Reach the database, bring its schema up to date (or check it is), sync the admins."""
    settings = app.settings
    try:
        await wait_for_database(app.engine, settings.database_wait_seconds)
        await migrate_or_check(
            app.engine,
            settings.database_url,
            migrate_on_start=settings.migrate_on_start if migrate is None else migrate,
        )
        await staff.sync_admins(app.uow_factory(), settings.admin_ids)
    except DatabaseLocked:
        raise locked(app.engine) from None
    except OperationalError as error:
        if problem := read_only(error, app.engine):
            raise problem from None
        if is_locked(error):
            raise locked(app.engine) from None
        raise
