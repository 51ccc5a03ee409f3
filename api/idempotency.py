"""`Idempotency-Key` on every POST: a retried request gets the first one's answer and does
nothing twice (services.idempotency has the rules)."""

import hashlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.routing import APIRoute

from api import errors, schemas
from api.context import ApiContext
from services import idempotency
from services.errors import DomainError
from services.idempotency import KEY_MAX, Replay

log = logging.getLogger(__name__)
HEADER = "Idempotency-Key"
LEASE_SECONDS = 60  # a request still running after this is taken over by a retry
KeyHeader = Annotated[
    str | None,
    Header(
        alias=HEADER,
        min_length=1,
        max_length=KEY_MAX,
        pattern=r"^[\x20-\x7e]+$",
        description=(
            "Any unique string (a UUID, say), for a request that may be sent again: the same"
            " key with the same body gets the first answer again and changes nothing more;"
            " with another body, 422; while the first is still running, 409 (retry shortly)."
            " A 409 or a 5xx that changed nothing is not kept, so a retry can still succeed."
            " If the first request did its work but its answer was lost (its server died),"
            " a retry of POST /order answers from the order; any other gets 409 saying so:"
            " read the result with a GET. Keys last 24 hours."
        ),
    ),
]


def documented(idempotency_key: KeyHeader = None) -> None:
    """Declares the header, so the schema shows it and a malformed key gets a 422."""


KEYED = [Depends(documented)]  # the dependencies of a POST that honours the header
KEY_ANSWERS = schemas.invalid("The Idempotency-Key came with another request before") | (
    schemas.problem(409, "The first request with this Idempotency-Key still runs")
)


def route_class(context: ApiContext, resumable: frozenset[str] = frozenset()) -> type[APIRoute]:
    """Routes whose POSTs honour the header. The endpoints named in `resumable` find their
    own earlier work when run again (a posted order, by its key): a retry after their first
    run died is answered from that work, where any other is refused."""

    class IdempotentRoute(APIRoute):
        def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
            if "POST" in (kwargs.get("methods") or ()):
                kwargs["responses"] = KEY_ANSWERS | dict(kwargs.get("responses") or {})
            super().__init__(path, endpoint, **kwargs)

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()
            if "POST" not in (self.methods or ()):
                return handler

            async def handle(request: Request) -> Response:
                key = request.headers.get(HEADER)
                caller = getattr(request.state, "caller", None)
                if key is None or caller is None or not idempotency.valid_key(key):
                    return await handler(request)  # unauthenticated or malformed: refused
                return await _once(
                    context, handler, request, caller.client, key, resumable=self.name in resumable
                )

            return handle

    return IdempotentRoute


async def _once(
    context: ApiContext,
    handler: Callable[[Request], Awaitable[Response]],
    request: Request,
    client: str,
    key: str,
    *,
    resumable: bool,
) -> Response:
    digest = hashlib.sha256(
        f"{request.method} {request.url.path}\n".encode() + await request.body()
    ).hexdigest()
    lease = timedelta(seconds=LEASE_SECONDS)
    try:
        begun = await idempotency.begin(
            context.uow_factory(), client, key, digest, lease, resumable=resumable
        )
    except DomainError as error:
        return errors.answer(error)
    if isinstance(begun, Replay):
        return Response(
            begun.body,
            status_code=begun.status,
            media_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    stamp = idempotency.stamp(begun)
    request.state.stamp = stamp
    request.state.source = f"key:{client}:{key}"
    try:
        response = await handler(request)
    except DomainError as error:
        response = errors.answer(error)
    except BaseException:
        await _finish(context, begun, None)
        raise
    # A conflict (no courier free) or a server error is not kept: a retry may do better.
    status = response.status_code
    kept = status < 500 and status != 409
    body = bytes(response.body).decode("utf-8", "replace")
    await _finish(context, begun, (status, body) if kept else None)
    return response


async def _finish(
    context: ApiContext, begun: idempotency.Running, answer: tuple[int, str] | None
) -> None:
    try:
        await idempotency.finish(context.uow_factory(), begun, answer)
    except Exception as error:  # the answer still goes out; the key frees itself in a while
        log.warning("could not keep the answer of an idempotent request: %r", error)


def shop_router(
    context: ApiContext, tag: str, resumable: frozenset[str] = frozenset()
) -> APIRouter:
    """A router of the shops' API: its routes' POSTs honour the header (see route_class), each
    answer may be a 401, and an operation's id is its function's name."""
    return APIRouter(
        tags=[tag],
        responses=schemas.UNAUTHORIZED,
        route_class=route_class(context, resumable),
        generate_unique_id_function=schemas.operation_id,
    )
