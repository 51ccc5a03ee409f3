"""`python -m bot`: start the bot in long-polling mode."""

import asyncio
import sys

from aiogram.exceptions import TelegramUnauthorizedError
from pydantic import ValidationError

from bot import logs
from bot.app import build_app, run_polling
from bot.settings import Settings, describe_errors


def main() -> int:
    try:
        settings = Settings()
    except ValidationError as error:
        print(f"Configuration error: {describe_errors(error)}. See .env.example.", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.bot_token.get_secret_value())
    try:
        asyncio.run(run_polling(build_app(settings)))
    except TelegramUnauthorizedError:
        print("Telegram rejected BOT_TOKEN: check it with @BotFather.", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
