"""Getting ready to serve: the database reachable and migrated, Telegram answering.

What cannot be fixed by waiting ends the bot with a StartupError: one line that says what
to fix, never a secret.
"""

import asyncio
import fcntl
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aiogram import Bot
from aiogram.exceptions import TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.utils.backoff import Backoff, BackoffConfig
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from db import migrate, sqlite_inline
from db.engine import make_sqlite_folder, sqlite_file
from db.migrate import SchemaState

log = logging.getLogger(__name__)
GET_ME_SECONDS = 20  # one try at reaching Telegram: a network that drops packets never answers
BACKOFF = BackoffConfig(min_delay=1.0, max_delay=30.0, factor=1.5, jitter=0.1)


class StartupError(Exception):
    """Why the bot cannot start, in one line for the person running it."""


def describe(engine: AsyncEngine) -> str:
    """The database, named without its password."""
    return engine.url.render_as_string(hide_password=True)


async def wait_for_database(engine: AsyncEngine, wait_seconds: float) -> None:
    """Connect, retrying with backoff while the server is unreachable, up to `wait_seconds`."""
    _make_sqlite_folder(engine)
    if engine.dialect.name == "sqlite":
        try:
            await sqlite_inline.self_test()
        except sqlite_inline.UnsupportedDriver as error:
            raise StartupError(str(error)) from None
    deadline = time.monotonic() + wait_seconds
    backoff = Backoff(config=BACKOFF)
    while True:
        try:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
            return
        except (OSError, TimeoutError, DBAPIError) as error:
            if isinstance(error, OperationalError) and (problem := read_only(error, engine)):
                raise problem from None
            reason = _reason(error)
            if not _worth_waiting(error) or time.monotonic() + backoff.next_delay > deadline:
                raise StartupError(
                    f"Cannot reach the database {describe(engine)}: {reason}"
                ) from None
            log.warning(
                "the database is unreachable (%s); retrying in %.1f s", reason, backoff.next_delay
            )
            await backoff.asleep()


async def migrate_or_check(engine: AsyncEngine, url: str, *, migrate_on_start: bool) -> None:
    """Bring the schema to this release's, or make sure it is there already."""
    state, revision = await migrate.schema_state(engine)
    if state is SchemaState.NEWER:
        raise StartupError(
            f"The database is at revision {revision}, made by a newer release of the bot."
            " Run that release, or restore a backup from before it."
        )
    if state is SchemaState.BEHIND:
        if not migrate_on_start:
            raise StartupError(
                "The database needs migrating: run `make migrate`, then start again."
            )
        await migrate.upgrade(url)


def read_only(error: OperationalError, engine: AsyncEngine) -> StartupError | None:
    """The SQLite file (or its folder) cannot be written, as a StartupError; else None."""
    if "readonly" not in str(error.orig) and "unable to open" not in str(error.orig):
        return None
    return _cannot_write(engine)


def locked(engine: AsyncEngine) -> StartupError:
    return StartupError(
        f"The SQLite database {engine.url.database} stayed locked by another process (a backup,"
        " a migration by hand?) for 30 s: start the bot again once it is done."
    )


def _cannot_write(engine: AsyncEngine) -> StartupError:
    return StartupError(
        f"The SQLite database {engine.url.database} cannot be written:"
        " make the file and its folder writable for the bot."
    )


async def wait_for_telegram(bot: Bot, wait_seconds: float, proxy: bool) -> None:
    """getMe until it answers (aiogram's polling asks once, without retrying, and caches it),
    for up to `wait_seconds`; then a StartupError naming the network and the proxy setting."""
    deadline = time.monotonic() + wait_seconds
    backoff = Backoff(config=BACKOFF)
    while True:
        try:
            remaining = max(1.0, deadline - time.monotonic())
            me = await bot.get_me(request_timeout=int(min(GET_ME_SECONDS, remaining)))
        except TelegramRetryAfter as error:
            await asyncio.sleep(error.retry_after)
        except (TelegramNetworkError, TelegramServerError) as error:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _unreachable(bot, wait_seconds, error, proxy) from None
            level = logging.WARNING if backoff.counter == 0 else logging.DEBUG
            log.log(level, "Telegram is unreachable (%s); retrying for up to %.0f s", error, left)
            await asyncio.sleep(min(next(backoff), left))
        else:
            log.debug("running as @%s (id %s)", me.username, me.id)
            return


def _unreachable(bot: Bot, seconds: float, error: Exception, proxy: bool) -> StartupError:
    server = bot.session.api.base.split("/bot")[0]
    how = "through TELEGRAM_PROXY" if proxy else "directly (TELEGRAM_PROXY sets a proxy)"
    return StartupError(
        f"Cannot reach Telegram at {server} {how} for {seconds:.0f} s ({error}):"
        " check this machine's network and firewall, then start again."
    )


@contextmanager
def the_only_instance(engine: AsyncEngine) -> Iterator[None]:
    """On SQLite, hold a lock beside the database file while serving: a second instance on
    the same file stops at start. Several instances need PostgreSQL (and Redis)."""
    database = sqlite_file(engine.url.render_as_string(hide_password=False))
    if database is None:
        yield
        return
    _make_sqlite_folder(engine)
    try:
        lock = open(database.with_name(database.name + ".lock"), "w")  # noqa: SIM115
    except OSError:
        raise _cannot_write(engine) from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StartupError(
                f"Another instance of the bot is running on {database}. SQLite serves one"
                " instance; to run several, use PostgreSQL (DATABASE_URL) and Redis (REDIS_URL)."
            ) from None
        yield


def _make_sqlite_folder(engine: AsyncEngine) -> None:
    try:
        make_sqlite_folder(engine.url.render_as_string(hide_password=False))
    except OSError as error:
        raise StartupError(
            f"Cannot create the folder of {engine.url.database}: {error.strerror}"
        ) from None


def _worth_waiting(error: Exception) -> bool:
    """A server that is down or starting up may come; a wrong login or database will not."""
    if isinstance(error, OSError | TimeoutError):
        return True
    return "starting up" in str(getattr(error, "orig", error))


def _reason(error: Exception) -> str:
    if isinstance(error, DBAPIError):
        return str(error.orig).strip() or type(error.orig).__name__
    return str(error) or type(error).__name__
