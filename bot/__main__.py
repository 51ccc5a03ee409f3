"""`python -m bot`: run the bot. `python -m bot migrate`: only migrate the database.
`python -m bot demo`: the playground, with no token and no network (bot.demo).
`python -m bot shops add|list|revoke NAME`: the shops of the HTTP API (bot.shops.admin).

Whatever stops it from starting ends it with exit code 2 and one line that says what to fix.
"""

import asyncio
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bot import demo
from bot.settings import Settings, describe_errors

if TYPE_CHECKING:
    from bot.app import App

USAGE = "usage: python -m bot [migrate | demo | shops add NAME | shops list | shops revoke NAME]"


async def migrate_only(app: "App") -> None:
    from bot.app import prepare_database

    try:
        await prepare_database(app, migrate=True)
    finally:
        await app.bot.session.close()
        await app.sender.bot.session.close()
        await app.engine.dispose()


def _work(argv: list[str], settings: Settings) -> Coroutine[Any, Any, None]:
    from bot.app import build_app
    from bot.serve import run

    if argv == ["demo"]:
        return demo.play(settings)
    app = build_app(settings)
    return migrate_only(app) if argv else run(app)


def _shop_command(args: list[str]) -> bool:
    return args == ["list"] or (len(args) >= 2 and args[0] in ("add", "revoke"))


def main(argv: list[str]) -> int:
    shops = argv[:1] == ["shops"]
    if argv not in ([], ["migrate"], ["demo"]) and not (shops and _shop_command(argv[1:])):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        settings = demo.settings() if argv == ["demo"] else Settings()
    except ValidationError as error:
        print(f"Configuration error: {describe_errors(error)}. See .env.example.", file=sys.stderr)
        return 2
    # Only now the rest, aiogram first among it: seconds a bad setting need not wait for.
    from aiogram.exceptions import TelegramUnauthorizedError

    from bot import logs
    from bot.startup import StartupError

    logs.configure(settings.log_level, settings.secrets())
    try:
        if shops:
            from bot.shops import admin

            return asyncio.run(admin.run(settings, argv[1:]))
        asyncio.run(_work(argv, settings))
    except StartupError as error:
        print(error, file=sys.stderr)
        return 2
    except TelegramUnauthorizedError:
        print("Telegram rejected BOT_TOKEN: check it with @BotFather.", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
