"""The one web app, served by uvicorn in the bot's own event loop: the HTTP API for shops
(when API_TOKENS is set), the Telegram webhook (when WEBHOOK_URL is), health and metrics."""

import asyncio
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline

from api import couriers, errors, orders, webhooks
from api.context import ApiContext
from api.gate import Gate
from bot.startup import StartupError

log = logging.getLogger(__name__)


def build_web_app(api: ApiContext | None, *routers: APIRouter) -> FastAPI:
    """The app with the shops' API on (given its context) or off, and the other `routers`."""
    app = FastAPIOffline(  # /docs with Swagger UI's files from the package, not a CDN
        title="Courier dispatch",
        summary="Shops post orders and read couriers; the same dispatch as the Telegram bot.",
        version="1.0",
        redirect_slashes=False,  # a redirect would be built from the Host header
    )
    errors.install_validation(app)
    if api is not None:
        shops = [
            couriers.build_router(api),
            orders.build_router(api),
            webhooks.build_router(api),
        ]
        for router in shops:
            app.include_router(router)
        guarded = [
            (route.path_regex, route.path, route.methods or set())
            for r in shops
            for route in r.routes
            if isinstance(route, APIRoute)
        ]
        app.add_middleware(Gate, api=api, routes=guarded)  # the size cap of the API, and more
        errors.install(app)
    for router in routers:
        app.include_router(router)
    return app


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, taken at start so that a port in use stops the bot at once."""
    try:
        listening = socket.create_server((host, port), reuse_port=False)
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise StartupError(f"Cannot listen on WEB_HOST {host}, WEB_PORT {port}: {reason}") from None
    # Connections accepted from it inherit this. asyncio sets it only on sockets it made
    # itself: without it a reply waits for the client's delayed ACK, 40 ms a request.
    listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listening


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        """The bot handles SIGINT and SIGTERM and stops this server itself."""
        yield


class WebServer:
    def __init__(self, app: FastAPI, listening: socket.socket, grace_seconds: float) -> None:
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            # Longer than a shop's client is likely to keep an idle connection, so that the
            # server seldom closes one just as the client sends on it.
            timeout_keep_alive=75,
            timeout_graceful_shutdown=max(1, int(grace_seconds)),
        )
        self._server = _Server(config)
        self._socket = listening
        self._serving: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self) -> asyncio.Task[None]:
        host, port = self._socket.getsockname()[:2]
        log.debug("the web server listens on %s:%s", host, port)
        self._serving = asyncio.create_task(
            self._server.serve(sockets=[self._socket]), name="web-server"
        )
        return self._serving

    async def stop(self, seconds: float) -> None:
        """Stop taking requests, and wait up to `seconds` for those in flight to finish."""
        self._server.should_exit = True
        if self._serving is not None:
            await asyncio.wait({self._serving}, timeout=max(0.0, seconds))
