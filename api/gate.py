"""What every request to the shops' API passes before FastAPI reads its body: a valid token
(else 401), a JSON body (else 415), at most MAX_BODY_BYTES of it (else 413). Each answer is
JSON, `{"detail": ...}`, like every other error of the API.

The shop behind the token is found once, here, and handed to the routes (api.context.caller).
A shop one of whose webhook endpoints was disabled hears it in a header of its next answer.
"""

import re
import time
from collections.abc import Collection

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.context import UNAUTHORIZED, ApiContext, Caller
from services import shops

Route = tuple[re.Pattern[str], str, Collection[str]]  # a path's pattern, template, methods
MAX_BODY_BYTES = 64 * 1024
TOO_LARGE = f"the body is over {MAX_BODY_BYTES // 1024} KiB"
DISABLED_HEADER = "Webhook-Endpoint-Disabled"
LOOK_SECONDS = 1.0
DISABLED_NOTICE = "failing for 3 days, an endpoint was disabled: GET /webhooks shows which"
_JSON = re.compile(r"application/(?:[\w.+-]+\+)?json", re.IGNORECASE)


class TooLarge(HTTPException):
    """A streamed body went past the cap: an HTTP error, which FastAPI lets through where it
    reads the body (any other error there becomes a 400), and renders as JSON."""

    def __init__(self) -> None:
        super().__init__(413, TOO_LARGE)


class Gate:
    def __init__(self, app: ASGIApp, api: ApiContext, routes: Collection[Route]) -> None:
        self.app = app
        self.api = api
        # The API's paths, in the router's order, each with every method its template takes:
        # worked out once here, not on each request.
        taken: dict[str, set[str]] = {}
        for _, template, methods in routes:
            taken.setdefault(template, set()).update(methods)
        self.paths = [(pattern, taken[template]) for pattern, template, _ in routes]
        self._looked: dict[int, float] = {}  # when each shop's notice was last looked for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        allowed = self._methods(scope)
        if allowed is None:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        caller = await self.api.authenticate(headers.get("authorization"))
        if caller is None:
            refusal: JSONResponse | None = _problem(
                401, UNAUTHORIZED, {"WWW-Authenticate": "Bearer"}
            )
        elif scope["method"] not in allowed:
            refusal = _problem(405, "method not allowed", {"Allow": ", ".join(sorted(allowed))})
        elif scope["method"] == "POST":  # the only method of the API's that reads a body
            refusal = self._refusal(headers)
        else:
            refusal = None
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        assert caller is not None
        scope.setdefault("state", {})["caller"] = caller
        await self._capped(scope, receive, await self._telling(caller, send))

    def _methods(self, scope: Scope) -> set[str] | None:
        """The methods the API takes at this path (at the first path template it matches, as
        the router picks); None for a path not the API's."""
        if scope["type"] != "http":
            return None
        path = scope["path"]
        return next((methods for pattern, methods in self.paths if pattern.match(path)), None)

    async def _telling(self, caller: Caller, send: Send) -> Send:
        """`send`, adding the notice of a disabled endpoint if the shop has one coming. Looked
        up at most once a second a shop, so that a busy shop's requests do not each pay."""
        now = time.monotonic()
        if now - self._looked.get(caller.shop.id, -LOOK_SECONDS) < LOOK_SECONDS:
            return send
        self._looked[caller.shop.id] = now
        if not await shops.take_endpoint_notice(self.api.uow_factory(), caller.shop):
            return send

        async def told(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = (DISABLED_HEADER.lower().encode(), DISABLED_NOTICE.encode())
                message = {**message, "headers": [*message.get("headers", []), extra]}
            await send(message)

        return told

    def _refusal(self, headers: Headers) -> JSONResponse | None:
        length = _length(headers)
        kind = headers.get("content-type", "").split(";")[0].strip()
        if (length or "transfer-encoding" in headers) and not _JSON.fullmatch(kind):
            return _problem(415, "send the body as JSON, with Content-Type: application/json")
        if length > MAX_BODY_BYTES:
            return _too_large()
        return None

    async def _capped(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The request, with a body that may not grow past the cap while it streams in."""
        read, started = 0, False

        async def counted() -> Message:
            nonlocal read
            message = await receive()
            read += len(message.get("body", b""))
            if read > MAX_BODY_BYTES:
                raise TooLarge
            return message

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except TooLarge:
            if started:
                raise
            await _too_large()(scope, receive, send)


def _length(headers: Headers) -> int:
    """Content-Length, which the server has checked is a number, or 0."""
    value = headers.get("content-length", "0")
    return int(value) if value.isdigit() else 0


def _too_large() -> JSONResponse:
    return _problem(413, TOO_LARGE)


def _problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)
