"""GET /healthz: 200 when the database answers (and Redis, when configured), else 503.
For load balancers, Docker's HEALTHCHECK and orchestrators."""

import asyncio
import logging
from collections.abc import Awaitable

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import ping

log = logging.getLogger(__name__)
CHECK_TIMEOUT_SECONDS = 3.0


def build_router(engine: AsyncEngine, redis: Redis | None) -> APIRouter:
    router = APIRouter()

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        checks = {"database": await _answers("the database", ping(engine))}
        if redis is not None:
            checks["redis"] = await _answers("Redis", redis.ping())
        healthy = all(state == "ok" for state in checks.values())
        return JSONResponse(checks, status_code=200 if healthy else 503)

    return router


async def _answers(name: str, check: Awaitable[object]) -> str:
    """ "ok", or "unavailable" when the check failed or took too long."""
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await check
    except Exception as error:  # whatever went wrong, the answer is the same: not healthy
        log.warning("health check: %s does not answer: %r", name, error)
        return "unavailable"
    return "ok"
