"""Running the bot: start up, serve until SIGINT or SIGTERM, stop in order.

Serving is taking updates (by long polling, or on the webhook), the outbox sender, the
scheduled jobs, and the web server when it is on. On a stop signal the bot stops taking
updates and requests, lets those in flight finish, sends what it can, all within
SHUTDOWN_GRACE_SECONDS.
"""

import asyncio
import gc
import logging
import signal
import time
import tomllib
from collections.abc import Coroutine, Sequence
from contextlib import suppress
from typing import Any, Protocol

from fastapi import APIRouter

from api.context import ApiContext
from bot import metrics
from bot.app import App, prepare_database
from bot.deadlines import OfferDeadlines
from bot.jobs import Jobs
from bot.startup import describe, the_only_instance, wait_for_telegram
from bot.telegram import webhook
from bot.telegram.intake import wanted_updates
from bot.telegram.polling import Poller
from bot.web import health
from bot.web.server import WebServer, bind, build_web_app
from db.engine import PROJECT_ROOT, sqlite_file
from handlers import menu
from services import inbox, outbox, webhooks

log = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Companion(Protocol):
    """What runs beside the bot (the playground): routes of its own on the web server, told
    when the bot is ready and when it begins to stop."""

    def routers(self) -> Sequence[APIRouter]: ...

    async def ready(self, address: str | None) -> None:
        """Everything runs; `address`: the web server's."""

    def stopping(self) -> None:
        """The bot stops: let the requests that wait on something end now."""


async def run(app: App, companion: Companion | None = None) -> None:
    """Serve until SIGINT or SIGTERM; the sessions, Redis and the engine are always released."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    try:
        with the_only_instance(app.engine):
            if await _unless_stopped(_start(app), stop):
                await _serve(app, stop, companion)
            else:
                log.info("stopped before it was ready")
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        await app.bot.session.close()
        await app.sender.bot.session.close()
        if app.redis is not None:
            await app.redis.aclose()
        await app.engine.dispose()


async def _unless_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run `work` to its end (True), unless `stop` is set first: then cancel it (False)."""
    working = asyncio.create_task(work)
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({working, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not working.done():
        working.cancel()
        with suppress(asyncio.CancelledError):
            await working
        return False
    working.result()  # its error, if it failed
    return True


async def _start(app: App) -> None:
    settings = app.settings
    await prepare_database(app)
    if not settings.admin_ids:
        log.warning("ADMIN_IDS is empty: nobody can add dispatchers or approve couriers")
    await wait_for_telegram(
        app.bot, settings.telegram_wait_seconds, proxy=settings.telegram_proxy is not None
    )
    await menu.set_default_menus(app.bot, app.i18n)


async def _serve(app: App, stop: asyncio.Event, companion: Companion | None) -> None:
    web = await _web_server(app, companion.routers() if companion else ())
    # Now that its socket listens, Telegram may learn the webhook (or polling may begin).
    await webhook.take_updates(app.bot, app.dispatcher, app.settings.webhook)
    await _take_back(app)
    sending = asyncio.create_task(app.sender.run(), name="outbox-sender")
    handling = asyncio.create_task(app.inbox.run(), name="inbox")
    calling = asyncio.create_task(app.webhooks.run(), name="shop-webhooks")
    polling = None
    if app.settings.webhook is None:
        poller = Poller(app.intake, wanted_updates(app.dispatcher))
        polling = asyncio.create_task(poller.run(), name="polling")
    tasks = [sending, handling, calling, *([polling] if polling else [])]
    # Even with OFFER_SECONDS=0: offers made before it was set still run out.
    deadlines = OfferDeadlines(app.uow_factory)
    tasks.append(asyncio.create_task(deadlines.run(), name="offer-deadlines"))
    if web is not None:
        tasks.append(web.start())
    jobs = Jobs(app.settings, app.uow_factory)
    jobs.start()
    log.info("%s", await _what_runs_where(app, web))
    # What start-up built lives as long as the bot. Out of the collector's sight, a full
    # collection no longer walks it: that walk stalled everything for 300 ms at a time
    # while couriers streamed live locations (docs/benchmarks.md).
    gc.freeze()
    if companion is not None:
        await companion.ready(web.address if web else None)
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({stopping, *tasks}, return_when=asyncio.FIRST_COMPLETED)
    for task in done - {stopping}:
        failure = task.exception()
        log.error("%s stopped by itself; the bot stops too", task.get_name(), exc_info=failure)
    stopping.cancel()
    if companion is not None:
        companion.stopping()
    await _wind_down(app, tasks, polling, web, jobs)


async def _what_runs_where(app: App, web: WebServer | None) -> str:
    """The one line a start logs at INFO."""
    me = await app.bot.me()
    webhook = app.settings.webhook
    updates = f"the webhook {webhook[0]}" if webhook else "long polling"
    served = f"web server on {web.address}" if web else "no web server"
    return (
        f"courier dispatch bot {version()} serves @{me.username} by {updates},"
        f" database {describe(app.engine)}, {served}"
    )


def version() -> str:
    with (PROJECT_ROOT / "pyproject.toml").open("rb") as project:
        return str(tomllib.load(project)["project"]["version"])


async def _take_back(app: App) -> None:
    """On SQLite this is the only instance (the_only_instance): what its last run held, the
    updates it was handling and the notices it was sending, is taken back now, not when the
    leases run out."""
    if sqlite_file(app.engine.url.render_as_string(hide_password=False)) is None:
        return
    updates = await inbox.give_back(app.uow_factory(), None)
    notices = await outbox.give_back(app.uow_factory(), None)
    await webhooks.give_back(app.uow_factory(), None)
    if updates or notices:
        log.info("took back %s updates and %s notices from the last run", updates, notices)


async def _web_server(app: App, also_serve: Sequence[APIRouter]) -> WebServer | None:
    """The web server, when it is on (Settings.web_on); its socket is taken now."""
    settings = app.settings
    if not settings.web_on:
        return None
    listening = bind(settings.web_host, settings.port)
    routers = [
        health.build_router(app.uow_factory, app.redis),
        metrics.build_router(app.metrics, app.uow_factory),
        *also_serve,
    ]
    if settings.webhook is not None:
        routers.append(webhook.build_router(app.intake, *settings.webhook))

    return WebServer(
        build_web_app(await _api_context(app), *routers),
        listening,
        settings.shutdown_grace_seconds,
    )


async def _api_context(app: App) -> ApiContext:
    settings = app.settings
    me = await app.bot.me()
    return ApiContext(
        uow_factory=app.uow_factory,
        tokens=frozenset(token.get_secret_value() for token in settings.api_tokens),
        zone=settings.zone,
        bot_username=me.username or "",
        allow_private_webhooks=settings.shop_webhooks_allow_private,
    )


async def _wind_down(
    app: App,
    tasks: list[asyncio.Task[None]],
    polling: asyncio.Task[None] | None,
    web: WebServer | None,
    jobs: Jobs,
) -> None:
    """Stop taking updates and requests, let those being handled finish and what they wrote
    go out, within the grace period; then stop everything. An update not handled by then
    stays in the inbox for the next start; a send in flight always finishes."""
    deadline = time.monotonic() + app.settings.shutdown_grace_seconds
    if polling is not None:
        await _cancel(polling)
    if web is not None:
        # A shop's request in flight commits notices too; the sender settles them below.
        await web.stop(deadline - time.monotonic())
    await jobs.stop(seconds=min(1.0, app.settings.shutdown_grace_seconds))
    if left := await app.inbox.stop(deadline - time.monotonic()):
        log.warning("stopping with %s chats' updates in hand; the next start redoes them", left)
    await app.webhooks.stop(deadline - time.monotonic())
    if not await app.sender.settle(max(0.0, deadline - time.monotonic())):
        log.warning("stopping with notices still to send; they go out after the restart")
    await app.sender.stop()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
