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

UNAUTHORIZED = "send Authorization: Bearer <one of API_TOKENS>"
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
            if credentials is None or not self.known(credentials.credentials):
                raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
            return Shop()

        return authenticated

    def uow(self, request: Request) -> UnitOfWork:
        """A dependency: a unit of work for the request; the service opens its transaction.
        A request with an idempotency key marks it with its work (api.idempotency)."""
        return self.uow_factory(getattr(request.state, "stamp", None))

    def known(self, token: str) -> bool:
        """Whether `token` is one of API_TOKENS: each compared, in constant time."""
        given = token.encode("utf-8", "replace")
        matches = [hmac.compare_digest(given, known.encode()) for known in self.tokens]
        return any(matches)  # every one compared, whichever matches

    def bearer(self, authorization: str | None) -> str | None:
        """The valid token of an Authorization header, or None."""
        scheme, _, token = (authorization or "").partition(" ")
        return token if scheme.lower() == "bearer" and self.known(token) else None

    def client(self, request: Request) -> str | None:
        """Whose the request is, for its idempotency key: a digest of its valid token."""
        token = self.bearer(request.headers.get("Authorization"))
        return hashlib.sha256(token.encode()).hexdigest()[:32] if token else None
