"""`python -m bot shops add|list|revoke NAME`: the shops that may use the HTTP API.

`add` makes the shop if it is new and prints a new token for it, once, alone on the last
line (so `| tail -1` takes it). `revoke` ends every token of the shop; its orders stay.
"""

import sys

from bot.settings import Settings
from bot.startup import migrate_or_check, wait_for_database
from db.engine import create_engine
from db.uow import UnitOfWorkFactory
from services import shops
from services.errors import DomainError, ErrorCode

SERVED = "The bot serves the API when WEB_PORT (or API_TOKENS, or WEBHOOK_URL) is set."


async def run(settings: Settings, args: list[str]) -> int:
    engine = create_engine(settings.database_url)
    try:
        await wait_for_database(engine, settings.database_wait_seconds)
        await migrate_or_check(
            engine, settings.database_url, migrate_on_start=settings.migrate_on_start
        )
        return await _command(UnitOfWorkFactory(engine), args)
    finally:
        await engine.dispose()


async def _command(factory: UnitOfWorkFactory, args: list[str]) -> int:
    verb, name = args[0], " ".join(args[1:])
    try:
        if verb == "add":
            shop, token = await shops.add_token(factory(), name)
            print(f"Shop {shop.name!r} has {len(shop.tokens)} token(s). {SERVED}")
            print("The new token, shown only now:")
            print(token)
        elif verb == "revoke":
            stored, revoked = await shops.revoke(factory(), name)
            print(f"Revoked {revoked} token(s) of {stored!r}; its orders stay.")
        else:
            _print_list(await shops.list_shops(factory()))
    except DomainError as error:
        print(_explain(error, name), file=sys.stderr)
        return 1
    return 0


def _print_list(found: list[shops.ShopView]) -> None:
    if not found:
        print("No shops yet: python -m bot shops add NAME")
    for shop in found:
        hints = ", ".join(f"{hint}…" for hint in shop.tokens) or "no token"
        print(
            f"{shop.name}\t{len(shop.tokens)} token(s)\tsince {shop.created_at:%Y-%m-%d}\t{hints}"
        )


def _explain(error: DomainError, name: str) -> str:
    if error.code is ErrorCode.SHOP_NOT_FOUND:
        return f"No shop is named {name!r}: python -m bot shops list"
    if error.code is ErrorCode.SHOP_NAME_LENGTH:
        return "A shop's name has 1 to 64 visible characters."
    return str(error.code)
