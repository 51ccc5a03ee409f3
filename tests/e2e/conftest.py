"""`python -m bot` as a subprocess, talking HTTP to the fake Telegram server in the test."""

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.e2e.fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:E2E-token-never-logged-0123456789"
ADMIN = 1000


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[FakeTelegram, str]]:
    fake = FakeTelegram(TOKEN)
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield fake, f"http://127.0.0.1:{port}"
    await runner.cleanup()


def bot_environment(api_url: str, database: Path, **extra: str) -> dict[str, str]:
    """A clean environment: nothing from the developer's .env or shell leaks in."""
    return {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": api_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "ADMIN_IDS": str(ADMIN),
        "OUTBOX_POLL_SECONDS": "0.05",
        **extra,
    }


async def start_bot(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def stop_bot(process: asyncio.subprocess.Process) -> str:
    """SIGTERM, as a service manager would; returns everything the bot logged."""
    process.terminate()
    return await output_of(process)


async def output_of(process: asyncio.subprocess.Process) -> str:
    """Wait for the bot to exit by itself; everything it printed."""
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return output.decode()


@pytest.fixture
async def running_bot(
    telegram: tuple[FakeTelegram, str], tmp_path: Path
) -> AsyncIterator[FakeTelegram]:
    fake, url = telegram
    process = await start_bot(bot_environment(url, tmp_path / "e2e.sqlite3"), tmp_path)
    await fake.wait_for(lambda c: c.method == "setMyCommands", within=60)
    yield fake
    log = await stop_bot(process)
    print(log)  # shown when the test fails
    assert process.returncode == 0, log
    assert TOKEN not in log
    assert TOKEN.split(":")[1] not in log
    assert "Traceback" not in log, log
