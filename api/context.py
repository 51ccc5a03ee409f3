"""What the API's routers need, built once by the composition root and handed in."""

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from fastapi import Depends, HTTPException, Request
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

    def uow(self, request: Request) -> UnitOfWork:
        """A dependency: a unit of work for the request; the service opens its transaction.
        A request with an idempotency key marks it with its work (api.idempotency)."""
        return self.uow_factory(getattr(request.state, "stamp", None))

    def client(self, request: Request) -> str | None:
        """Whose the request is, for its idempotency key: a digest of its valid token."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        matches = [hmac.compare_digest(token.encode(), t.encode()) for t in self.tokens]
        if scheme.lower() != "bearer" or not any(matches):
            return None
        return hashlib.sha256(token.encode()).hexdigest()[:32]
