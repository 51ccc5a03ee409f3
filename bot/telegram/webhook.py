"""Updates from Telegram: over a webhook when WEBHOOK_URL is set, else by long polling.

The webhook is served on the one web app, at the path of WEBHOOK_URL. Telegram sends the
secret with every update; a request without it gets 401 and changes nothing. An update is
answered 200 only once it is stored in the inbox (bot.telegram.inbox); when it cannot be
(the database is down or locked), the answer is 503 and Telegram sends it again later. The
webhook stays registered when the bot stops, so Telegram keeps the updates of a deploy for
the next instance to take.
"""

import asyncio
import hmac
import logging
from urllib.parse import urlsplit

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramBadRequest
from fastapi import APIRouter, HTTPException, Request, Response

from bot.logs import log_failure
from bot.startup import StartupError
from bot.telegram.inbox import read_update
from bot.telegram.intake import Intake, wanted_updates
from handlers.errors import transient

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024
# How long an update may wait to be stored (SQLite locked by another process, say) before
# Telegram is asked to send it again later.
STORE_SECONDS = 5.0


def build_router(intake: Intake, url: str, secret: str) -> APIRouter:
    router = APIRouter()

    @router.post(urlsplit(url).path or "/", include_in_schema=False, max_body_size=MAX_UPDATE_BYTES)
    async def take_update(request: Request) -> Response:
        """Keep the update, then answer: it is handled after, from the inbox (a live
        location's edit is written with others in a batch: bot.telegram.intake)."""
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, secret.encode()):
            raise HTTPException(401, "Wrong or missing secret token.")
        try:
            update = read_update(await request.body(), intake.inbox.bot)
        except ValueError:
            raise HTTPException(400, "The body is not a Telegram update.") from None
        try:
            async with asyncio.timeout(STORE_SECONDS):
                await intake.keep([update])
        except Exception as error:
            if transient(error):
                log_failure(
                    log, "update %s could not be stored; Telegram sends it again", update.update_id
                )
                raise HTTPException(
                    503, "The update cannot be stored now; send it again."
                ) from None
            # Never storable (it cannot even be written down): asking again would not help.
            log.error("update %s cannot be stored, and is dropped: %r", update.update_id, error)
        return Response(status_code=200)

    return router


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
            allowed_updates=wanted_updates(dispatcher),
            drop_pending_updates=False,
        )
    except TelegramBadRequest as error:
        raise StartupError(f"Telegram refused WEBHOOK_URL {url}: {error.message}") from None
    log.debug("updates come over the webhook %s", url)
