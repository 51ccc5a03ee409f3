import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import build_bot, build_dispatcher
from bot.settings import Settings
from db.engine import create_engine
from db.uow import UnitOfWorkFactory
from handlers.i18n import PoI18n
from services import staff
from tests.bot.harness import Harness, RecordingSession
from tests.conftest import sqlite_url
from tests.helpers import ADMIN, DISPATCHER

TOKEN = "123456:TEST-token-for-the-router-tests"


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"bot_token": TOKEN, "admin_ids": str(ADMIN)}
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[arg-type]


@pytest.fixture
def approval() -> bool:
    return True


async def staffed_harness(engine: AsyncEngine, approval: bool) -> Harness:
    """The bot over `engine`'s database, with an admin and a dispatcher."""
    uow_factory = UnitOfWorkFactory(engine)
    config = settings(courier_approval=approval)
    await staff.sync_admins(uow_factory(), config.admin_ids)
    await staff.grant_dispatcher(uow_factory(), ADMIN, DISPATCHER)
    bot = build_bot(config, RecordingSession())
    dispatcher = build_dispatcher(config, uow_factory, PoI18n(config.default_locale))
    return Harness(dispatcher, bot, uow_factory)


@pytest.fixture
async def harness(tmp_path: Path, sqlite_template: Path, approval: bool) -> AsyncIterator[Harness]:
    """The bot over a fresh SQLite file."""
    path = tmp_path / "bot.sqlite3"
    shutil.copy(sqlite_template, path)
    engine = create_engine(sqlite_url(path))
    yield await staffed_harness(engine, approval)
    await engine.dispose()


@pytest.fixture
async def harness_on_each_database(engine: AsyncEngine, approval: bool) -> Harness:
    """The bot over SQLite, then over PostgreSQL (when the tests have one)."""
    return await staffed_harness(engine, approval)
