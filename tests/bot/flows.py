"""Multi-step stories shared by the router tests."""

from aiogram.methods import SendMessage

from tests.bot.harness import Harness, buttons
from tests.helpers import ADMIN


async def add_districts(harness: Harness, *names: str) -> None:
    for name in names:
        await harness.send(ADMIN, f"/add_district {name}")


async def register(
    harness: Harness, user_id: int, name: str, districts: list[str], language: str = "en"
) -> list[str]:
    """/register, type the name, tap the districts, tap Done; returns the last replies."""
    await harness.send(user_id, "/register", language=language)
    sent = await harness.send(user_id, name, language=language)
    keyboard = next(r for r in sent if isinstance(r, SendMessage) and buttons(r))
    by_name = {text.removeprefix("✅ "): data for text, data in buttons(keyboard)}
    for district in districts:
        await harness.tap(user_id, by_name[district], language=language)
    done = buttons(keyboard)[-1][1]
    finished = await harness.tap(user_id, done, language=language)
    return [getattr(r, "text", "") for r in finished if getattr(r, "text", None)]


async def approve_all(harness: Harness) -> None:
    """Deliver the registration requests and tap Approve on each one the admin got."""
    for request in await harness.deliver():
        if isinstance(request, SendMessage) and request.chat_id == ADMIN:
            for text, data in buttons(request):
                if "Approve" in text:
                    await harness.tap(ADMIN, data)
    await harness.deliver()  # the couriers hear they are approved
