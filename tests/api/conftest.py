"""The real ASGI app through httpx, over SQLite and PostgreSQL."""

from collections.abc import AsyncIterator
from zoneinfo import ZoneInfo

import httpx
import pytest

from api.context import ApiContext
from bot.web.server import build_web_app
from db.uow import UnitOfWorkFactory
from tests.bot.conftest import approval, harness  # noqa: F401  # the bot beside the API
from tests.helpers import Desk

TOKEN = "shop-token-0123456789abcdef"
OTHER_TOKEN = "second-shop-token-9876543210"


def client_of(
    uow_factory: UnitOfWorkFactory, token: str | None = TOKEN, *, allow_private: bool = False
) -> httpx.AsyncClient:
    context = ApiContext(
        uow_factory=uow_factory,
        tokens=frozenset({TOKEN, OTHER_TOKEN}),
        zone=ZoneInfo("UTC"),
        bot_username="dispatch_bot",
        allow_private_webhooks=allow_private,
    )
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_web_app(context)),
        base_url="http://shop.test",
        headers=headers,
    )


@pytest.fixture
async def api(uow_factory: UnitOfWorkFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with client_of(uow_factory) as client:
        yield client


@pytest.fixture
async def desk(uow_factory: UnitOfWorkFactory) -> Desk:
    """The bot's side of the same business: an admin and a dispatcher."""
    desk = Desk(uow_factory)
    await desk.staff_up()
    return desk
