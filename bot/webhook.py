"""Updates from Telegram: over a webhook when WEBHOOK_URL is set, else by long polling.

The webhook is served on the one web app, at the path of WEBHOOK_URL. Telegram sends the
secret with every update; a request without it gets 401 and changes nothing. The webhook
stays registered when the bot stops, so Telegram keeps the updates of a deploy for the next
instance to take.
"""

import asyncio
import hmac
import logging
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Update
from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import ValidationError

from bot.startup import StartupError

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024


def build_router(dispatcher: Dispatcher, bot: Bot, url: str, secret: str) -> APIRouter:
    router = APIRouter()
    handling: set[asyncio.Task[None]] = set()

    @router.post(urlsplit(url).path or "/", include_in_schema=False, max_body_size=MAX_UPDATE_BYTES)
    async def take_update(request: Request) -> Response:
        """Take the update and answer at once; it is handled after (see `_handle`)."""
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, secret.encode()):
            raise HTTPException(401, "Wrong or missing secret token.")
        try:
            update = Update.model_validate_json(await request.body(), context={"bot": bot})
        except ValidationError:
            raise HTTPException(400, "The body is not a Telegram update.") from None
        task = asyncio.create_task(_handle(dispatcher, bot, update))
        handling.add(task)  # held until done: the loop keeps only weak references to tasks
        task.add_done_callback(handling.discard)
        return Response(status_code=200)

    return router


async def _handle(dispatcher: Dispatcher, bot: Bot, update: Update) -> None:
    """Handle an update that Telegram has been told was taken. Were the answer to wait for
    the handler, a slow chat or a deploy's stop cutting it short would make Telegram send the
    update again, and an order would be posted twice. A user's updates still take turns (the
    event isolation), and a stop waits for them (`UpdatesInFlight`)."""
    try:
        await dispatcher.feed_update(bot, update)
    except Exception:
        log.exception("update %s failed", update.update_id)


async def take_updates(bot: Bot, dispatcher: Dispatcher, webhook: tuple[str, str] | None) -> None:
    """Register the webhook (url, secret), or make sure there is none, so polling can work."""
    if webhook is None:
        info = await bot.get_webhook_info()
        if info.url:
            log.warning("WEBHOOK_URL is not set: removing the webhook %s to poll", info.url)
            await bot.delete_webhook(drop_pending_updates=False)
        return
    url, secret = webhook
    try:
        await bot.set_webhook(
            url,
            secret_token=secret,
            allowed_updates=dispatcher.resolve_used_update_types(),
            drop_pending_updates=False,
        )
    except TelegramBadRequest as error:
        raise StartupError(f"Telegram refused WEBHOOK_URL {url}: {error.message}") from None
    log.info("updates come over the webhook %s", url)
