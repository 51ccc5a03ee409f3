"""Starting and stopping like a service: one clear line and exit code 2 for what needs
fixing, and a SIGTERM that lets the updates in flight finish."""

import os
import sqlite3
from pathlib import Path

import pytest

from db.engine import PROJECT_ROOT
from db.migrate import upgrade
from playground.telegram import FakeTelegram
from tests.conftest import sqlite_url
from tests.e2e.conftest import ADMIN, bot_environment, output_of, start_bot, start_ready, stop_bot

SLOW_CHAT = -100600


async def migrated(path: Path) -> Path:
    await upgrade(sqlite_url(path))
    return path


async def last_line_and_code(env: dict[str, str], cwd: Path) -> tuple[str, int | None, str]:
    process = await start_bot(env, cwd)
    output = await output_of(process)
    return output.strip().splitlines()[-1], process.returncode, output


@pytest.mark.parametrize(
    ("setting", "value", "line"),
    [
        (
            "DATABASE_URL",
            "sqlite:///dispatch.sqlite3",
            "Configuration error: DATABASE_URL needs an async driver, like"
            " sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/database."
            " See .env.example.",
        ),
        (
            "DATABASE_URL",
            "postgres://u:secret-pw@db/x",
            "Configuration error: DATABASE_URL needs an async driver, like"
            " sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/database."
            " See .env.example.",
        ),
        (
            "DATABASE_URL",
            "::not a url secret-pw",
            "Configuration error: DATABASE_URL is not a database URL. See .env.example.",
        ),
        (
            "TELEGRAM_API_URL",
            "api.telegram.org",
            "Configuration error: TELEGRAM_API_URL is not an http(s) URL like"
            " https://api.telegram.org. See .env.example.",
        ),
        (
            "TELEGRAM_API_URL",
            "http://localhost:port",
            "Configuration error: TELEGRAM_API_URL is not an http(s) URL like"
            " https://api.telegram.org. See .env.example.",
        ),
    ],
)
async def test_bad_urls_are_named_without_their_secrets(
    telegram: tuple[FakeTelegram, str], tmp_path: Path, setting: str, value: str, line: str
):
    env = bot_environment(telegram[1], tmp_path / "db.sqlite3") | {setting: value}
    last, code, output = await last_line_and_code(env, tmp_path)
    assert (last, code) == (line, 2)
    assert "secret-pw" not in output
    assert "Traceback" not in output


async def test_an_unreachable_postgresql_is_retried_then_given_up(
    telegram: tuple[FakeTelegram, str], tmp_path: Path
):
    url = "postgresql+asyncpg://dispatch:secret-pw@127.0.0.1:9/dispatch"  # nothing listens
    env = bot_environment(telegram[1], tmp_path / "x.sqlite3") | {
        "DATABASE_URL": url,
        "DATABASE_WAIT_SECONDS": "2",
    }
    last, code, output = await last_line_and_code(env, tmp_path)
    assert code == 2
    assert last.startswith(
        "Cannot reach the database postgresql+asyncpg://dispatch:***@127.0.0.1:9/dispatch:"
    )
    assert "retrying in" in output
    assert "secret-pw" not in output
    assert "Traceback" not in output


async def test_a_read_only_sqlite_file(telegram: tuple[FakeTelegram, str], tmp_path: Path):
    path = await migrated(tmp_path / "ro.sqlite3")
    env = bot_environment(telegram[1], path) | {
        "DATABASE_URL": f"sqlite+aiosqlite:///file:{path}?mode=ro&uri=true"
    }
    last, code, output = await last_line_and_code(env, tmp_path)
    assert (last, code) == (
        f"The SQLite database file:{path} cannot be written:"
        " make the file and its folder writable for the bot.",
        2,
    )
    assert "Traceback" not in output


async def test_a_database_from_a_newer_release(telegram: tuple[FakeTelegram, str], tmp_path: Path):
    path = await migrated(tmp_path / "newer.sqlite3")
    with sqlite3.connect(path) as database:
        database.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    last, code, output = await last_line_and_code(bot_environment(telegram[1], path), tmp_path)
    assert (last, code) == (
        "The database is at revision 9999_from_the_future, made by a newer release of the bot."
        " Run that release, or restore a backup from before it.",
        2,
    )
    assert "Traceback" not in output


async def test_an_unmigrated_database_without_migrate_on_start(
    telegram: tuple[FakeTelegram, str], tmp_path: Path
):
    env = bot_environment(telegram[1], tmp_path / "fresh.sqlite3") | {"MIGRATE_ON_START": "false"}
    last, code, _ = await last_line_and_code(env, tmp_path)
    assert (last, code) == (
        "The database needs migrating: run `make migrate`, then start again.",
        2,
    )


async def test_sigterm_lets_the_update_in_flight_finish(
    telegram: tuple[FakeTelegram, str], tmp_path: Path
):
    fake, url = telegram
    fake.slow[SLOW_CHAT] = 2.0
    process = await start_ready(fake, bot_environment(url, tmp_path / "term.sqlite3"), tmp_path)
    await fake.send(ADMIN, "/add_district North", chat_id=SLOW_CHAT)
    reply = await fake.wait_for(lambda c: c.chat_id == SLOW_CHAT, arrived=True)

    log = await stop_bot(process)  # while Telegram still holds the reply

    assert process.returncode == 0, log
    assert fake.abandoned == []
    assert reply in fake.calls
    assert "Traceback" not in log


async def test_a_relative_sqlite_path_is_the_projects_wherever_the_bot_starts(
    telegram: tuple[FakeTelegram, str], tmp_path: Path
):
    fake, url = telegram
    database = tmp_path / "anchored.sqlite3"
    relative = os.path.relpath(database, PROJECT_ROOT)  # noqa: ASYNC240  # from the project
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = bot_environment(url, database) | {"DATABASE_URL": f"sqlite+aiosqlite:///{relative}"}

    process = await start_ready(fake, env, elsewhere)
    log = await stop_bot(process)

    assert process.returncode == 0, log
    assert database.exists()
    assert list(elsewhere.iterdir()) == []
