"""Settings: parsing, validation, and the documentation of every one."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.settings import Settings, describe_errors

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:ABC-def_ghi"
SECRET = "webhook-secret-0123456789"


def load(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_every_setting_is_documented_in_env_example():
    documented = set(re.findall(r"^(?:# )?([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.M))
    for_compose_only = {"POSTGRES_PASSWORD"}  # read by docker-compose.yml, not by the bot
    assert {name.upper() for name in Settings.model_fields} == documented - for_compose_only


def test_the_documented_example_loads_once_it_has_a_token(monkeypatch: pytest.MonkeyPatch):
    for line in (ROOT / ".env.example").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            assert value, f"{name}= is empty: in Docker it would override the image's value"
            monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None)  # type: ignore[call-arg]
    assert "put your token from @BotFather" in describe_errors(refused.value)
    monkeypatch.setenv("BOT_TOKEN", TOKEN)
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
        ({"bot_token": TOKEN, "admin_ids": "1,bob"}, "ADMIN_IDS takes numeric Telegram ids"),
        ({"bot_token": TOKEN, "admin_ids": "@myname"}, "not @usernames: send /start to the bot"),
        ({"bot_token": "123:has space"}, "BOT_TOKEN is not a bot token"),
        ({"bot_token": "abc:xyz"}, "BOT_TOKEN is not a bot token"),
        (
            {"bot_token": TOKEN, "webhook_url": "https://bot.example"},
            "WEBHOOK_URL needs WEBHOOK_SECRET",
        ),
        (
            {"bot_token": TOKEN, "webhook_url": "http://bot.example", "webhook_secret": SECRET},
            "WEBHOOK_URL must be https:// for Telegram",
        ),
        ({"bot_token": TOKEN, "webhook_url": "bot.example/hook"}, "WEBHOOK_URL is not a URL"),
        ({"bot_token": TOKEN, "webhook_secret": "xyzzy-short"}, "WEBHOOK_SECRET needs 16 to 256"),
        ({"bot_token": TOKEN, "webhook_secret": "xyzzy/" * 4}, "WEBHOOK_SECRET needs 16 to 256"),
        ({"bot_token": TOKEN, "redis_url": "http://xyzzy:6379"}, "REDIS_URL is not a Redis URL"),
        (
            {"bot_token": TOKEN, "telegram_proxy": "ftp://a:xyzzy@h"},
            "TELEGRAM_PROXY is not a proxy",
        ),
        ({"bot_token": TOKEN, "telegram_wait_seconds": -1}, "TELEGRAM_WAIT_SECONDS"),
    ],
)
def test_bad_settings_are_named_without_their_values(values: dict[str, object], message: str):
    with pytest.raises(ValidationError) as error:
        load(**values)
    described = describe_errors(error.value)
    assert message in described
    assert "xyzzy" not in described


def test_commented_defaults_are_the_defaults():
    """Each `# NAME=value` line of .env.example shows the default it keeps."""
    defaults = load(bot_token=TOKEN)
    example = (ROOT / ".env.example").read_text()
    for name, value in re.findall(r"^# ([A-Z_]+)=(\S+)$", example, re.M):
        if name in ("ADMIN_IDS", "WEB_PORT", "WEBHOOK_URL"):  # examples: unset by default
            continue
        assert load(bot_token=TOKEN, **{name.lower(): value}) == defaults, name


def test_a_proxy_login_is_a_secret():
    settings = load(bot_token=TOKEN, telegram_proxy="socks5://me:pa55word@proxy:1080")
    assert ("me:pa55word", "TELEGRAM_PROXY's login") in settings.secrets()


def test_webhook_mode():
    settings = load(
        bot_token=TOKEN, webhook_url="https://bot.example/telegram", webhook_secret=SECRET
    )
    assert settings.webhook == ("https://bot.example/telegram", SECRET)
    assert settings.web_on
    assert (SECRET, "WEBHOOK_SECRET") in settings.secrets()
    assert load(bot_token=TOKEN).webhook is None
    assert not load(bot_token=TOKEN).web_on


def test_a_bot_api_server_of_our_own_may_call_a_plain_http_webhook():
    settings = load(
        bot_token=TOKEN,
        telegram_api_url="http://127.0.0.1:8081",
        webhook_url="http://10.0.0.5:8080/telegram",
        webhook_secret=SECRET,
    )
    assert settings.webhook == ("http://10.0.0.5:8080/telegram", SECRET)


def test_the_log_level_is_read_in_any_case():
    assert load(bot_token=TOKEN, log_level="info").log_level == "INFO"


def test_a_bad_setting_is_named_before_aiogram_is_imported():
    """aiogram takes seconds to import: a bad setting must not wait for it."""
    probe = (
        "import sys; from bot.__main__ import main; code = main([]);"
        " print(code, 'aiogram' in sys.modules)"
    )
    environment = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "ADMIN_IDS": "@myname"}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=environment | {"BOT_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.stdout.split() == ["2", "False"], done.stderr
    assert "ADMIN_IDS takes numeric Telegram ids" in done.stderr
