"""What the API's routers need, built once by the composition root and handed in."""

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from db.uow import UnitOfWork, UnitOfWorkFactory
from services import shops
from services.access import Shop

UNAUTHORIZED = "send Authorization: Bearer <your shop's token>"
BEARER = HTTPBearer(
    auto_error=False,
    description="A shop's token (`python -m bot shops add NAME`), or one of API_TOKENS.",
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The shop behind a request's token, and whose idempotency keys it uses."""

    shop: Shop
    client: str


@dataclass(frozen=True)
class ApiContext:
    uow_factory: UnitOfWorkFactory
    tokens: frozenset[str]  # API_TOKENS: the unnamed shop's
    zone: ZoneInfo  # the days of "orders per day"
    bot_username: str  # for couriers' Telegram links
    allow_private_webhooks: bool = False  # SHOP_WEBHOOKS_ALLOW_PRIVATE
    _unnamed: list[Shop] = field(default_factory=list, repr=False)

    def uow(self, request: Request) -> UnitOfWork:
        """A dependency: a unit of work for the request; the service opens its transaction.
        A request with an idempotency key marks it with its work (api.idempotency)."""
        return self.uow_factory(getattr(request.state, "stamp", None))

    async def authenticate(self, authorization: str | None) -> Caller | None:
        """The caller an Authorization header names, or None."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        if self._configured(token):
            # The keys of API_TOKENS' requests stay per token, as they were before shops.
            digest = hashlib.sha256(token.encode()).hexdigest()[:32]
            return Caller(await self._unnamed_shop(), digest)
        shop = await shops.by_token(self.uow_factory(), token)
        return Caller(shop, f"shop:{shop.id}") if shop else None

    def _configured(self, token: str) -> bool:
        """Whether `token` is one of API_TOKENS: each compared, in constant time."""
        given = token.encode("utf-8", "replace")
        matches = [hmac.compare_digest(given, known.encode()) for known in self.tokens]
        return any(matches)  # every one compared, whichever matches

    async def _unnamed_shop(self) -> Shop:
        if not self._unnamed:
            self._unnamed.append(await shops.unnamed(self.uow_factory()))
        return self._unnamed[0]


def caller(
    request: Request,
    _credentials: HTTPAuthorizationCredentials | None = Depends(BEARER),  # noqa: B008
) -> Caller:
    """A dependency: the caller the gate let in (api.gate); it declares the bearer token."""
    found = getattr(request.state, "caller", None)
    if not isinstance(found, Caller):
        raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    return found


def shop(found: Caller = Depends(caller)) -> Shop:  # noqa: B008
    """A dependency: the shop the gate let in."""
    return found.shop


ShopCalling = Annotated[Shop, Depends(shop)]  # a route's parameter: the shop that calls
