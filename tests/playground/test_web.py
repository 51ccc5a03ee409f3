"""The playground's page endpoints, through the ASGI app: what a person does reaches the
emulator as Telegram would deliver it; bad input is refused and changes nothing."""

from collections.abc import AsyncIterator

import httpx
import pytest

from bot.web.server import build_web_app
from playground import web
from playground.seed import ANN_ID, CAST
from playground.telegram import FakeTelegram


@pytest.fixture
async def page() -> AsyncIterator[tuple[FakeTelegram, httpx.AsyncClient]]:
    fake = FakeTelegram("1:playground")
    for person in CAST:
        fake.chats.add(person)
    app = build_web_app(None, web.build_router(fake, "demo-token-0123456789"))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield fake, client


async def test_a_message_and_a_location_become_updates(
    page: tuple[FakeTelegram, httpx.AsyncClient],
) -> None:
    fake, client = page
    said = await client.post(f"/playground/people/{ANN_ID}/messages", json={"text": "/me"})
    placed = await client.post(
        f"/playground/people/{ANN_ID}/locations", json={"latitude": 51.5, "longitude": -0.12}
    )
    assert (said.status_code, placed.status_code) == (204, 204)
    message, location = (update["message"] for update in fake.updates)
    assert (message["text"], message["from"]["first_name"]) == ("/me", "Ann")
    assert location["location"] == {"latitude": 51.5, "longitude": -0.12}
    assert "text" not in location
    state = (await client.get("/playground/state")).json()
    ann = next(chat for chat in state["chats"] if chat["person"]["id"] == ANN_ID)
    assert [m["sender"] for m in ann["messages"]] == ["user", "user"]
    assert state["api"]["token"] == "demo-token-0123456789"


async def test_a_newcomer_gets_a_chat(page: tuple[FakeTelegram, httpx.AsyncClient]) -> None:
    fake, client = page
    added = await client.post("/playground/people", json={"name": "Eve", "language": "ru"})
    assert added.status_code == 201
    eve = fake.chats.chats[added.json()["id"]].person
    assert (eve.name, eve.role, eve.language) == ("Eve", "newcomer", "ru")


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/playground/people/999/messages", {"text": "hi"}, 404),
        (f"/playground/people/{ANN_ID}/messages", {"text": ""}, 422),
        (f"/playground/people/{ANN_ID}/messages", {"text": "x" * 4097}, 422),
        (f"/playground/people/{ANN_ID}/locations", {"latitude": 91, "longitude": 0}, 422),
        (f"/playground/people/{ANN_ID}/locations", '{"latitude": 1, "longitude": 1e999}', 422),
        (f"/playground/people/{ANN_ID}/locations", '{"latitude": NaN, "longitude": 1}', 422),
        (f"/playground/people/{ANN_ID}/messages", '{"text": "\\ud800"}', 422),
        (f"/playground/people/{ANN_ID}/taps", {"message_id": 5, "data": "done:1"}, 404),
        ("/playground/people", {"name": "<script>"}, 422),
        ("/playground/people", {"name": "   "}, 422),
        ("/playground/people", {"name": "Eve\u202e"}, 422),
        ("/playground/people", {"name": "Eve", "language": "xx"}, 422),
    ],
)
async def test_bad_input_changes_nothing(
    page: tuple[FakeTelegram, httpx.AsyncClient], path: str, body: object, status: int
) -> None:
    fake, client = page
    before = fake.chats.version
    raw = {"content": body} if isinstance(body, str) else {"json": body}
    answer = await client.post(path, headers={"content-type": "application/json"}, **raw)
    assert answer.status_code == status, answer.text
    assert "detail" in answer.json()
    assert (fake.updates, fake.chats.version) == ([], before)


async def test_the_playground_holds_fifty_people_and_each_chat_200_messages(
    page: tuple[FakeTelegram, httpx.AsyncClient],
) -> None:
    fake, client = page
    statuses = [
        (await client.post("/playground/people", json={"name": f"P{n}"})).status_code
        for n in range(50)
    ]
    assert statuses.count(201) == 50 - len(CAST)
    assert statuses[-1] == 409
    for _ in range(300):
        fake.chats.popup(ANN_ID, "Delivered! Thank you.")
    assert len(fake.chats.chats[ANN_ID].messages) == 200


async def test_only_its_own_files_are_served(
    page: tuple[FakeTelegram, httpx.AsyncClient],
) -> None:
    _, client = page
    assert (await client.get("/playground")).text.startswith("<!doctype html>")
    script = await client.get("/playground/assets/playground.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert (await client.get("/playground/assets/..%2Fweb.py")).status_code == 404
    assert (await client.get("/playground/assets/index.html")).status_code == 404
