"""Every error code has a message in English and in Russian, and the limits come from the
service's parameters, never from the text."""

import pytest
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError

from handlers.errors import MESSAGES, USAGE, transient
from handlers.i18n import PoI18n, speaking
from services.errors import API_ONLY, DomainError, ErrorCode

# Every parameter a service passes with some error.
EXAMPLE = {
    "command": "track",
    "name": "Ann",
    "courier_id": 3,
    "order_id": 12,
    "telegram_id": 555,
    "district": "North",
    "text": "Nowhere tea",
    "min": 1,
    "max": 64,
}


def render(code: ErrorCode, locale: str, **params: object) -> str:
    with speaking(PoI18n("en"), locale):
        return MESSAGES[code](EXAMPLE | params)


def test_every_code_has_a_message():
    assert set(MESSAGES) == set(ErrorCode) - API_ONLY


@pytest.mark.parametrize("code", sorted(set(ErrorCode) - API_ONLY))
def test_every_code_reads_differently_in_russian(code: ErrorCode):
    english, russian = render(code, "en"), render(code, "ru")
    assert english != russian
    assert "{" not in english
    assert "{" not in russian


@pytest.mark.parametrize("command", sorted(USAGE))
def test_every_usage_reads_in_both_languages(command: str):
    error = DomainError(ErrorCode.USAGE, command=command)
    assert render(error.code, "en", **error.params) != render(error.code, "ru", **error.params)


def test_limits_come_from_the_service():
    assert "3 to 99" in render(ErrorCode.DESCRIPTION_LENGTH, "en", min=3, max=99)
    assert "от 3 до 99" in render(ErrorCode.DESCRIPTION_LENGTH, "ru", min=3, max=99)


def test_what_the_database_says_of_being_away_is_tried_again_and_of_a_request_is_not():
    """asyncpg's refusals while a server restarts come as a plain DBAPIError: an update that
    meets one waits, where one the database refuses for itself is not stored again."""
    starting = DBAPIError("INSERT", {}, Exception("the database system is starting up"))
    assert transient(starting)
    assert transient(OperationalError("BEGIN", {}, Exception("database is locked")))
    assert not transient(DataError("INSERT", {}, Exception("value out of range")))
    assert not transient(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not transient(ValueError("Circular reference detected (depth exceeded)"))
