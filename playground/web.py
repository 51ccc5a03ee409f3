"""The playground's page and what it calls: one chat per person, driven through the emulator.

Not part of the shops' API: it is served only by `python -m bot demo`, and left out of the
OpenAPI schema.
"""

import itertools
import math
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field, field_validator

from playground.chats import Person
from playground.telegram import FakeTelegram

NEWCOMERS_FROM = 3001  # the Telegram ids of people added on the page
ASSETS = {"playground.js": "text/javascript", "playground.css": "text/css"}
LONG_POLL_SECONDS = 20.0
MAX_PEOPLE = 50
# No control, bidi or zero-width characters, nothing like HTML.
_NAME = r"^[^\x00-\x1f\x7f<>&\u200b-\u200f\u202a-\u202e\u2066-\u2069]+$"


class Said(BaseModel):
    text: str = Field(min_length=1, max_length=4096)

    @field_validator("text")
    @classmethod
    def _unicode(cls, value: str) -> str:
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError("must be text without lone surrogates") from None
        return value


class Tapped(BaseModel):
    message_id: int
    data: str = Field(min_length=1, max_length=64)


class Located(BaseModel):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)

    @field_validator("latitude", "longitude")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class Newcomer(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=_NAME)

    @field_validator("name")
    @classmethod
    def _visible(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must show something")
        return value

    language: str = Field(default="en", pattern="^(en|ru)$")


def build_router(fake: FakeTelegram, api_token: str) -> APIRouter:
    """The page, its assets, and the JSON it reads and posts, for the people in `fake.chats`."""
    router = APIRouter(prefix="/playground", include_in_schema=False, max_body_size=64 * 1024)
    ids = itertools.count(NEWCOMERS_FROM)

    @router.get("")
    async def page() -> HTMLResponse:
        return HTMLResponse(_asset("index.html"))

    @router.get("/assets/{name}")
    async def asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, "no such file")
        return Response(_asset(name), media_type=ASSETS[name])

    @router.get("/state")
    async def state(after: Annotated[int, Query(ge=-1)] = -1) -> dict[str, Any]:
        """Every chat, once something changed after version `after` (or within 20 s)."""
        await fake.chats.changed_since(after, LONG_POLL_SECONDS)
        return fake.chats.state() | {"api": {"docs": "/docs", "token": api_token}}

    @router.post("/people", status_code=201)
    async def add_person(newcomer: Newcomer) -> dict[str, int]:
        if len(fake.chats.chats) >= MAX_PEOPLE:
            raise HTTPException(409, f"the playground holds {MAX_PEOPLE} people at most")
        person = Person(next(ids), newcomer.name.strip(), "newcomer", newcomer.language)
        fake.chats.add(person)
        return {"id": person.id}

    @router.post("/people/{person_id}/messages", status_code=204)
    async def say(person_id: int, said: Said) -> None:
        person = _person(fake, person_id)
        await fake.send(person.id, said.text, name=person.name, language=person.language)

    @router.post("/people/{person_id}/locations", status_code=204)
    async def locate(person_id: int, place: Located) -> None:
        person = _person(fake, person_id)
        await fake.send_location(
            person.id, place.latitude, place.longitude, name=person.name, language=person.language
        )

    @router.post("/people/{person_id}/taps", status_code=204)
    async def tap(person_id: int, tapped: Tapped) -> None:
        person = _person(fake, person_id)
        shown = fake.shown(person.id, tapped.message_id)
        if shown is None:
            raise HTTPException(404, "no such message in this chat")
        await fake.tap(person.id, shown, tapped.data, name=person.name, language=person.language)

    return router


def _person(fake: FakeTelegram, person_id: int) -> Person:
    chat = fake.chats.chats.get(person_id)
    if chat is None:
        raise HTTPException(404, "no such person")
    return chat.person


def _asset(name: str) -> str:
    return resources.files("playground").joinpath("static", name).read_text(encoding="utf-8")
