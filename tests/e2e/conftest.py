"""`python -m bot` as a subprocess, talking HTTP to the fake Telegram server in the test."""

import asyncio
import contextlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import Select, func, select

from db.engine import create_engine
from db.migrate import upgrade
from db.models import Order
from db.uow import UnitOfWorkFactory
from playground.telegram import Call, FakeTelegram, serving
from services import staff
from tests.conftest import sqlite_url
from tests.helpers import Desk

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:E2E-token-never-logged-0123456789"
ADMIN = 1000


OFFER = re.compile(r"New order <b>#(\d+)</b>")


def offer(call: Call) -> int | None:
    """The order a courier is offered in this call, if it is a delivered offer."""
    found = OFFER.search(call.text) if call.method == "sendMessage" else None
    return int(found.group(1)) if found else None


async def couriers_complete_everything(fake: FakeTelegram, orders: int, within: float) -> float:
    """Each courier taps Complete on every order they are offered, until all are delivered;
    how long it took."""
    started = time.monotonic()
    deadline = started + within
    completed = seen = 0
    while completed < orders:

        def grew(known: int = seen) -> bool:
            return len(fake.calls) > known

        await fake.wait_until(grew, within=deadline - time.monotonic())
        fresh, seen = fake.calls[seen:], len(fake.calls)
        for call in fresh:
            if offer(call) is not None:
                await fake.tap(call.chat_id, call, call.buttons()[0][1])
            elif call.method == "answerCallbackQuery" and call.params.get("text") == (
                "Delivered! Thank you."
            ):
                completed += 1
    return time.monotonic() - started


def sent_to(chat_id: int, *words: str) -> Callable[[Call], bool]:
    def matches(call: Call) -> bool:
        return (
            call.method in ("sendMessage", "editMessageText")
            and call.chat_id == chat_id
            and all(word in call.text for word in words)
        )

    return matches


async def register(tg: FakeTelegram, user_id: int, name: str, language: str = "en") -> None:
    """The /register dialog: a name, the first district offered, done."""
    mark = tg.mark()
    await tg.send(user_id, "/register", language=language)
    await tg.wait_for(sent_to(user_id), since=mark)
    mark = tg.mark()
    await tg.send(user_id, name, language=language)
    keyboard = await tg.wait_for(lambda c: c.chat_id == user_id and bool(c.buttons()), since=mark)
    district, done = keyboard.buttons()[0], keyboard.buttons()[-1]
    mark = tg.mark()
    await tg.tap(user_id, keyboard, district[1], language=language)
    await tg.wait_for(
        lambda c: c.method == "editMessageReplyMarkup" and c.chat_id == user_id, since=mark
    )
    await tg.tap(user_id, keyboard, done[1], language=language)


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[FakeTelegram, str]]:
    async with serving(FakeTelegram(TOKEN)) as (fake, url):
        yield fake, url


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
        "OFFER_SECONDS": "0",  # orders assigned outright, as before offers; tests of offers set it
        **report_not_due(),
        **extra,
    }


def report_not_due() -> dict[str, str]:
    """A TIMEZONE where it is about noon now, with the day's report at 23:00 there: no bot of
    a test sends it, whatever the hour the tests run at, unless the test sets DAILY_REPORT_AT.
    (With the defaults, UTC and 21:00, every bot started after 21:00 UTC sends it at start.)"""
    hours_east = 12 - datetime.now(UTC).hour
    return {"TIMEZONE": f"Etc/GMT{-hours_east:+d}", "DAILY_REPORT_AT": "23:00"}


class Forked:
    """A bot started by the zygote (tests/e2e/zygote.py), as asyncio's Process would be."""

    def __init__(self, pid: int, exited: "Future[int]") -> None:
        self.pid = pid
        self._exited = exited

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.wrap_future(self._exited)

    def send_signal(self, signum: int) -> None:
        if not self._exited.done():  # once reaped, the pid may be another process's
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Zygote:
    """One per test process: it has imported the bot, and forks it on request."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.zygote"],
            cwd=ROOT,
            env={"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self._started: queue.Queue[int] = queue.Queue()
        self._exits: dict[int, Future[int]] = {}
        self._lock = threading.Lock()
        self._exits_lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def start(self, argv: Sequence[str], env: dict[str, str], cwd: Path, log: Path) -> Forked:
        request = {"argv": list(argv), "env": env, "cwd": str(cwd), "log": str(log)}
        assert self._process.stdin is not None
        with self._lock:
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            self._process.stdin.flush()
            pid = self._started.get(timeout=30)
        return Forked(pid, self._exit_of(pid))

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(10)

    def _exit_of(self, pid: int) -> "Future[int]":
        with self._exits_lock:  # the reader's, not start's: that one waits for the reader
            return self._exits.setdefault(pid, Future())

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            message = json.loads(line)
            if "started" in message:
                self._started.put(message["started"])
            else:
                self._exit_of(message["exited"]).set_result(message["code"])


ZYGOTES: list[Zygote] = []  # this test process's, made on first use
FORK = os.environ.get("E2E_FORK", "1") != "0"  # 0: a fresh `python -m bot` every time


@pytest.fixture(scope="session", autouse=True)
def zygote_closed() -> Iterator[None]:
    yield
    for zygote in ZYGOTES:
        zygote.close()


class BotProcess:
    """`python -m bot` running; what it prints goes to a file, so it never waits on a pipe."""

    started: ClassVar[list["BotProcess"]] = []  # for the clean-up after each test

    def __init__(self, process: "asyncio.subprocess.Process | Forked", log: Path) -> None:
        self.process = process
        self.log = log
        BotProcess.started.append(self)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def output(self) -> str:
        return self.log.read_text()


async def start_bot(env: dict[str, str], cwd: Path, *args: str) -> BotProcess:
    """`python -m bot` with `args`, its output in a file: forked from the zygote, or with
    E2E_FORK=0 a fresh interpreter."""
    handle, name = tempfile.mkstemp(prefix="bot-", suffix=".log")
    if FORK:
        os.close(handle)
        if not ZYGOTES:
            ZYGOTES.append(Zygote())
        return BotProcess(ZYGOTES[0].start(args, env, cwd, Path(name)), Path(name))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env,
        stdout=handle,
        stderr=asyncio.subprocess.STDOUT,
    )
    os.close(handle)
    return BotProcess(process, Path(name))


async def start_ready(fake: FakeTelegram, env: dict[str, str], cwd: Path) -> BotProcess:
    """`python -m bot`, once it serves: it has set its command menus."""
    mark = fake.mark()
    bot = await start_bot(env, cwd)
    await fake.wait_for(lambda c: c.method == "setMyCommands", since=mark, within=60)
    return bot


async def post_orders(fake: FakeTelegram, dispatchers: Sequence[int], count: int) -> None:
    """`/order North parcel n` for n from 1 to `count`, the dispatchers taking turns."""
    for n in range(count):
        await fake.send(dispatchers[n % len(dispatchers)], f"/order North parcel {n + 1}")


def free_port() -> int:
    """A port of loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def stop_bot(bot: BotProcess) -> str:
    """SIGTERM, as a service manager would; returns everything the bot logged."""
    bot.process.terminate()
    return await output_of(bot)


async def output_of(bot: BotProcess) -> str:
    """Wait for the bot to exit by itself; everything it printed."""
    await asyncio.wait_for(bot.process.wait(), 60)
    return bot.output()


def database_url(database: Path | str) -> str:
    """A SQLite file's URL, or the URL given."""
    return database if isinstance(database, str) else sqlite_url(database)


async def seed(
    database: Path | str,
    *,
    districts: list[str],
    couriers: dict[int, str],
    dispatchers: Sequence[int] = (),
) -> None:
    """A business in the database before the bot starts: the admin, dispatchers, districts,
    and active couriers (Telegram id -> district), as the services make them. `database`: a
    SQLite file, or any database URL."""
    url = database_url(database)
    await upgrade(url)
    engine = create_engine(url)
    desk = Desk(UnitOfWorkFactory(engine))
    try:
        await desk(staff.sync_admins, [ADMIN])
        for dispatcher in dispatchers:
            await desk(staff.grant_dispatcher, ADMIN, dispatcher)
        ids = await desk.add_districts(*districts)
        for telegram_id, district in couriers.items():
            await desk.add_courier(telegram_id, [ids[district]], f"C{telegram_id}")
    finally:
        await engine.dispose()


@pytest.fixture(autouse=True)
async def no_bot_left_behind() -> AsyncIterator[None]:
    """Whatever a test started is killed when it ends, passed or failed, and its log goes."""
    yield
    while BotProcess.started:
        bot = BotProcess.started.pop()
        if bot.returncode is None:
            bot.process.kill()
            await bot.process.wait()
        print(f"--- the last of {bot.log.name}:\n" + "\n".join(bot.output().splitlines()[-60:]))
        bot.log.unlink(missing_ok=True)


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float) -> None:
    """Until `check()` is true, looking twice a second."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not so within {within} s")
        await asyncio.sleep(0.5)


async def count_rows(database: Path | str, query: Select[Any]) -> int:
    """What a `SELECT count(*)` finds in the bot's database (a SQLite file or a URL)."""
    engine = create_engine(database_url(database))
    try:
        async with engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one())
    finally:
        await engine.dispose()


async def count_orders(database: Path | str, *statuses: str) -> int:
    """Orders in the bot's database, of these statuses (any, without)."""
    query = select(func.count()).select_from(Order)
    if statuses:
        query = query.where(Order.status.in_(statuses))
    return await count_rows(database, query)


async def orders_posted(database: Path | str, count: int) -> bool:
    return await count_orders(database) == count


async def orders_in_progress(database: Path) -> list[int]:
    engine = create_engine(sqlite_url(database))
    try:
        async with engine.connect() as connection:
            query = select(Order.id).where(Order.status == "assigned")
            return list((await connection.execute(query)).scalars())
    finally:
        await engine.dispose()


@pytest.fixture
async def running_bot(
    telegram: tuple[FakeTelegram, str], tmp_path: Path
) -> AsyncIterator[FakeTelegram]:
    fake, url = telegram
    process = await start_ready(fake, bot_environment(url, tmp_path / "e2e.sqlite3"), tmp_path)
    yield fake
    log = await stop_bot(process)
    print(log)  # shown when the test fails
    assert process.returncode == 0, log
    assert TOKEN not in log
    assert TOKEN.split(":")[1] not in log
    assert "Traceback" not in log, log
