"""Schemathesis, as the README runs it: every check, every phase (stateful included), against
the API on a real server over SQLite. Deterministic, so a failure comes back the same."""

import asyncio
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import uvicorn

from api.context import ApiContext
from bot.web.server import build_web_app
from db.engine import PROJECT_ROOT, create_engine
from db.uow import UnitOfWorkFactory
from services import couriers, districts, shops
from tests.conftest import sqlite_url
from tests.e2e.conftest import free_port

TOKEN = "schemathesis-token-0123456789"


async def seed(factory: UnitOfWorkFactory) -> None:
    """What the schema's examples name: the district North, with a courier."""
    shop = await shops.unnamed(factory())
    await districts.add_district(factory(), shop, "North")
    await couriers.create_courier(factory(), shop, "Ann", ["North"])


@pytest.fixture
def served(tmp_path: Path, sqlite_template: Path) -> Iterator[str]:
    database = tmp_path / "fuzz.sqlite3"
    shutil.copy(sqlite_template, database)
    engine = create_engine(sqlite_url(database))
    factory = UnitOfWorkFactory(engine)
    context = ApiContext(
        factory, frozenset({TOKEN}), ZoneInfo("UTC"), "bot", allow_private_webhooks=True
    )
    port = free_port()
    config = uvicorn.Config(
        build_web_app(context), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)

    def serve() -> None:
        async def main() -> None:
            await seed(factory)
            await server.serve()
            await engine.dispose()

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_schemathesis_finds_nothing(served: str):
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "--config-file",
        str(PROJECT_ROOT / "schemathesis.toml"),
        "run",
        f"{served}/openapi.json",
        "--checks",
        "all",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        "25",
        "--generation-deterministic",
        "--header",
        f"Authorization: Bearer {TOKEN}",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)

    assert run.returncode == 0, run.stdout[-6000:]
    assert "Stateful" in run.stdout
