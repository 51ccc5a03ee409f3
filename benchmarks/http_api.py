"""POST /order from concurrent clients over loopback HTTP: requests a second and latency.

The server is the project's web app served as the bot serves it (its own listening socket,
bot.web.server.bind), in a process of its own, on a SQLite file (WAL) holding enough free
couriers that every order is assigned at once. It runs twice: as the bot does, and with
TCP_NODELAY cleared on that socket, which is how the bot served before it set it. Run with
`.venv/bin/python -m benchmarks.http_api [requests] [clients]`.
"""

import asyncio
import socket
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from api.context import ApiContext
from benchmarks.common import summary_ms
from bot.web.server import WebServer, bind, build_web_app
from db.engine import create_engine
from db.migrate import upgrade
from db.uow import UnitOfWorkFactory
from services import couriers, districts, shops, staff
from tests.e2e.conftest import free_port

TOKEN = "benchmark-token-0123456789"


async def seed(url: str, couriers_count: int) -> None:
    await upgrade(url)
    engine = create_engine(url)
    factory = UnitOfWorkFactory(engine)
    await staff.sync_admins(factory(), [1])
    shop = await shops.unnamed(factory())
    await districts.add_district(factory(), shop, "North")
    for n in range(couriers_count):
        await couriers.create_courier(factory(), shop, f"C{n}", ["North"])
    await engine.dispose()


def serve(url: str, port: int, nodelay: bool) -> None:
    """The server process: the API over `url` on loopback."""
    engine = create_engine(url)
    context = ApiContext(UnitOfWorkFactory(engine), frozenset({TOKEN}), ZoneInfo("UTC"), "bot")
    listening = bind("127.0.0.1", port)
    if not nodelay:
        listening.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)

    async def forever() -> None:
        await WebServer(build_web_app(context), listening, 1).start()

    asyncio.run(forever())


async def load(port: int, requests: int, clients: int) -> list[float]:
    """Latencies of `requests` POST /order from `clients` at once, in seconds."""
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(requests):
        queue.put_nowait(n)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=headers, limits=limits
    ) as client:

        async def one_client() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                started = time.perf_counter()
                response = await client.post(
                    "/order", json={"name": f"parcel {n}", "district": "North", "queue": True}
                )
                latencies.append(time.perf_counter() - started)
                assert response.status_code in (201, 202), response.text

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return latencies


async def wait_until_listening(port: int, server: asyncio.subprocess.Process) -> None:
    """Until the server answers; it imports for seconds, more on a busy machine."""
    async with httpx.AsyncClient() as client:
        while server.returncode is None:
            try:
                await client.get(f"http://127.0.0.1:{port}/docs")
                return
            except httpx.ConnectError:
                await asyncio.sleep(0.1)
    raise RuntimeError(f"the server exited with {server.returncode}")


async def main(requests: int, clients: int) -> None:
    for nodelay in (True, False):
        await measure(requests, clients, nodelay=nodelay)


async def measure(requests: int, clients: int, *, nodelay: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'api.sqlite3'}"
        await seed(url, couriers_count=requests)
        port = free_port()
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.http_api", "serve", url, str(port), str(nodelay)
        )
        try:
            await asyncio.wait_for(wait_until_listening(port, server), 120)
            started = time.perf_counter()
            latencies = await load(port, requests, clients)
            took = time.perf_counter() - started
        finally:
            server.terminate()
            await server.wait()
    socket_is = "TCP_NODELAY (as served)" if nodelay else "without TCP_NODELAY (as before)"
    print(
        f"POST /order, {clients} clients, {requests} requests on SQLite, {socket_is}: "
        f"{requests / took:.0f} requests/s, {summary_ms(latencies)}"
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "True")
    else:
        arguments = [int(a) for a in sys.argv[1:3]]
        asyncio.run(main(*(arguments + [2000, 50][len(arguments) :])))
