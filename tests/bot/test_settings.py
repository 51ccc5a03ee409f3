"""Settings: parsing, validation, and the documentation of every one."""

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import Settings, describe_errors

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:ABC-def_ghi"


def load(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_every_setting_is_documented_in_env_example():
    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    assert {name.upper() for name in Settings.model_fields} == documented


def test_the_documented_example_loads(monkeypatch: pytest.MonkeyPatch):
    for line in (ROOT / ".env.example").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.telegram_api_url == "https://api.telegram.org"


def test_defaults_and_parsing():
    settings = load(bot_token=TOKEN, admin_ids="1, 2,3", telegram_api_url="http://local:8081/")
    assert settings.admin_ids == frozenset({1, 2, 3})
    assert settings.telegram_api_url == "http://local:8081"
    assert settings.courier_approval
    assert settings.default_locale == "en"
    assert str(settings.zone) == "UTC"
    assert settings.database_url.startswith("sqlite+aiosqlite:///")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "BOT_TOKEN is required"),
        ({"bot_token": "nonsense-xyzzy"}, "BOT_TOKEN is not a bot token"),
        ({"bot_token": TOKEN, "timezone": "Mars/Olympus"}, "TIMEZONE unknown time zone"),
        ({"bot_token": TOKEN, "default_locale": "de"}, "DEFAULT_LOCALE"),
        ({"bot_token": TOKEN, "admin_ids": "1,bob"}, "ADMIN_IDS"),
    ],
)
def test_bad_settings_are_named_without_their_values(values: dict[str, object], message: str):
    with pytest.raises(ValidationError) as error:
        load(**values)
    described = describe_errors(error.value)
    assert message in described
    assert "xyzzy" not in described
