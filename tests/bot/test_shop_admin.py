"""`python -m bot shops add|list|revoke NAME`, run as the command line runs it (in process)."""

import asyncio
import shutil
from pathlib import Path

import pytest

from bot.__main__ import main
from db.engine import create_engine
from db.uow import UnitOfWorkFactory
from services import shops
from tests.conftest import sqlite_url

BOT_TOKEN = "123456:ABCdefGHIjklMNOpqrSTUvwxYZ012345678"


@pytest.fixture
def database(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    shutil.copy(sqlite_template, tmp_path / "shops.sqlite3")
    url = sqlite_url(tmp_path / "shops.sqlite3")
    monkeypatch.setenv("BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("DATABASE_URL", url)
    return url


async def holder(url: str, token: str) -> bool:
    engine = create_engine(url)
    try:
        return await shops.by_token(UnitOfWorkFactory(engine)(), token) is not None
    finally:
        await engine.dispose()


def test_a_shop_gets_tokens_lists_and_loses_them(
    database: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
):
    assert main(["shops", "add", "Green", "Grocer"]) == 0
    first = capsys.readouterr().out.splitlines()[-1]
    assert main(["shops", "add", "green grocer"]) == 0  # the same shop, another token
    second = capsys.readouterr().out.splitlines()[-1]
    assert main(["shops", "list"]) == 0
    listed = capsys.readouterr().out

    assert first.startswith("shop_")
    assert second.startswith("shop_")
    assert first != second
    assert asyncio.run(holder(database, first))
    assert asyncio.run(holder(database, second))
    assert "Green Grocer\t2 token(s)" in listed
    assert main(["shops", "revoke", "GREEN GROCER"]) == 0
    assert "Revoked 2 token(s)" in capsys.readouterr().out
    assert not asyncio.run(holder(database, first))
    assert first not in caplog.text
    assert second not in caplog.text


@pytest.mark.parametrize(
    ("argv", "code", "said"),
    [
        (["shops", "revoke", "Nobody"], 1, "No shop is named 'Nobody'"),
        (["shops", "revoke", "API_TOKENS"], 1, "No shop is named"),
        (["shops", "add", "\u200b"], 1, "1 to 64 visible characters"),
        (["shops", "add", "x" * 65], 1, "1 to 64 visible characters"),
        (["shops"], 2, "usage:"),
        (["shops", "add"], 2, "usage:"),
        (["shops", "remove", "x"], 2, "usage:"),
    ],
)
def test_mistakes_are_told_plainly(
    database: str, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, said: str
):
    assert main(argv) == code
    assert said in capsys.readouterr().err
