"""Shops: who may use the HTTP API, each with its own orders. Managed from the command line
(`python -m bot shops`); the tokens in API_TOKENS stand for one unnamed shop."""

import secrets

from db.models import Shop as ShopRow
from db.repositories.shops import UNNAMED_KEY
from db.uow import UnitOfWork
from services import clock
from services.access import Shop
from services.errors import ErrorCode, NotFound
from services.read_models import ShopView
from services.validation import clean_name, name_key

__all__ = [
    "ShopView",
    "add_token",
    "by_token",
    "list_shops",
    "revoke",
    "take_endpoint_notice",
    "unnamed",
]

TOKEN_PREFIX = "shop_"
UNNAMED_NAME = "API_TOKENS"
HINT_LENGTH = 9  # "shop_" and 4 characters: enough to tell a shop's tokens apart


async def add_token(uow: UnitOfWork, name: str) -> tuple[ShopView, str]:
    """A new token for the shop of this name, made if it is new; the token is shown once."""
    name = clean_name(name, ErrorCode.SHOP_NAME_LENGTH)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with uow.write():
        now = clock.utcnow()
        shop = await uow.shops.ensure(name, name_key(name), now)
        await uow.shops.add_token(shop.id, token, token[:HINT_LENGTH], now)
        view = next(v for v in await _views(uow) if v.sid == shop.sid)
        await uow.commit()
    return view, token


async def revoke(uow: UnitOfWork, name: str) -> tuple[str, int]:
    """Every token of the shop of this name stops working: its name as stored, and how many
    tokens it had. Its orders and webhooks stay, for a new token."""
    async with uow.write():
        shop = await uow.shops.by_name_key(name_key(name))
        if shop is None or shop.name_key == UNNAMED_KEY:
            raise NotFound(ErrorCode.SHOP_NOT_FOUND, name=name)
        stored = shop.name
        revoked = await uow.shops.revoke_tokens(shop.id)
        await uow.commit()
    return stored, revoked


async def list_shops(uow: UnitOfWork) -> list[ShopView]:
    async with uow.read():
        return await _views(uow)


async def _views(uow: UnitOfWork) -> list[ShopView]:
    return [_view(shop, hints) for shop, hints in await uow.shops.named()]


async def by_token(uow: UnitOfWork, token: str) -> Shop | None:
    """The shop holding this token (one made by `add_token`), or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    async with uow.read():
        shop = await uow.shops.by_token(token)
        return Shop(shop.id) if shop else None


async def unnamed(uow: UnitOfWork) -> Shop:
    """The shop that API_TOKENS stand for (the migration makes it; so does this)."""
    async with uow.read():
        shop = await uow.shops.by_name_key(UNNAMED_KEY)
        if shop is not None:
            return Shop(shop.id)
    async with uow.write():
        shop = await uow.shops.ensure(UNNAMED_NAME, UNNAMED_KEY, clock.utcnow())
        made = Shop(shop.id)
        await uow.commit()
    return made


async def take_endpoint_notice(uow: UnitOfWork, shop: Shop) -> bool:
    """Whether one of the shop's webhook endpoints was disabled since it was last told."""
    async with uow.read():
        row = await uow.shops.get(shop.id)
        if row is None or not row.endpoint_disabled:
            return False
    async with uow.write():
        told = await uow.shops.take_endpoint_notice(shop.id)
        await uow.commit()
    return told


def _view(shop: ShopRow, hints: list[str]) -> ShopView:
    return ShopView(sid=shop.sid, name=shop.name, tokens=tuple(hints), created_at=shop.created_at)
