"""GET /healthz: 200 when the database answers and takes writes (and Redis answers, when
configured), else 503 with what is wrong; always within a second. For load balancers,
Docker's HEALTHCHECK and orchestrators."""

import asyncio
import logging
from collections.abc import Awaitable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.asyncio import Redis

from db.engine import ping
from db.uow import UnitOfWorkFactory

log = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 0.4  # each of at most two checks, run side by side
LOCKED = "locked: another process holds SQLite's write lock"


def build_router(uow_factory: UnitOfWorkFactory, redis: Redis | None) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        checks = {"database": _answers("the database", _database(uow_factory))}
        if redis is not None:
            checks["redis"] = _answers("Redis", redis.ping())
        states = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
        healthy = all(state == "ok" for state in states.values())
        return JSONResponse(states, status_code=200 if healthy else 503)

    return router


async def _database(uow_factory: UnitOfWorkFactory) -> str | None:
    """It answers, and takes writes; else what is wrong."""
    await ping(uow_factory.engine)
    return None if await uow_factory.writable() else LOCKED


async def _answers(name: str, check: Awaitable[object]) -> str:
    """ "ok"; what is wrong, when the check says (a string); or "unavailable" when it failed
    or took too long."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            problem = await check
    except Exception as error:  # whatever went wrong, the answer is the same: not healthy
        log.warning("health check: %s does not answer: %r", name, error)
        return "unavailable"
    if isinstance(problem, str):
        log.warning("health check: %s is %s", name, problem)
        return problem
    return "ok"
