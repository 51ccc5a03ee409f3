"""What the API's routers need, built once by the composition root and handed in."""

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from db.uow import UnitOfWork, UnitOfWorkFactory
from services.access import Shop

_BEARER = HTTPBearer(auto_error=False, description="One of the tokens in API_TOKENS.")


@dataclass(frozen=True)
class ApiContext:
    uow_factory: UnitOfWorkFactory
    tokens: frozenset[str]
    zone: ZoneInfo  # the days of "orders per day"
    bot_username: str  # for couriers' Telegram links

    def shop(self) -> Callable[..., Awaitable[Shop]]:
        """A dependency: the shop behind a valid bearer token, or 401."""

        async def authenticated(
            credentials: HTTPAuthorizationCredentials | None = Depends(_BEARER),  # noqa: B008
        ) -> Shop:
            given = credentials.credentials.encode() if credentials else b""
            # Every token is compared, in constant time, whichever matches.
            matches = [hmac.compare_digest(given, token.encode()) for token in self.tokens]
            if credentials is None or not any(matches):
                raise HTTPException(
                    status_code=401,
                    detail="send Authorization: Bearer <one of API_TOKENS>",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return Shop()

        return authenticated

    def uow(self) -> UnitOfWork:
        """A dependency: a unit of work for the request; the service opens its transaction."""
        return self.uow_factory()
