"""Settings from the environment and `.env`. Every one is documented in `.env.example`.

Read before aiogram is imported (it takes seconds): a bad setting is named at once.
"""

import re
from datetime import time
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from db.engine import DEFAULT_DATABASE_URL, PROJECT_ROOT, anchored

OFFICIAL_API_URL = "https://api.telegram.org"
PLACEHOLDER_TOKEN = ":replace-with-your-token"  # .env.example's
_HH_MM = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_BOT_TOKEN = re.compile(r"[0-9]+:\S+")  # what aiogram's validate_token accepts
_WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{16,256}")  # Telegram allows 1-256 of these
ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
PROXY_SCHEMES = ("http", "https", "socks4", "socks5")  # what aiohttp-socks connects through


class Settings(BaseSettings):
    # .env is read from the project folder, wherever the bot is started from.
    model_config = SettingsConfigDict(
        env_file=PROJECT_ROOT / ".env", env_ignore_empty=True, extra="ignore", frozen=True
    )

    bot_token: SecretStr
    database_url: str = DEFAULT_DATABASE_URL
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    # The tokens of the unnamed shop; named shops' are in the database (`python -m bot shops`).
    api_tokens: Annotated[frozenset[SecretStr], NoDecode] = frozenset()
    shop_webhooks_allow_private: bool = False
    web_host: str = "127.0.0.1"
    web_port: int | None = Field(default=None, ge=1, le=65535)
    # Webhook mode instead of long polling, and the secret Telegram sends with each update.
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    # Shared state for several instances: dialogs, one-at-a-time per user, flood limits.
    redis_url: str | None = None
    telegram_api_url: str = OFFICIAL_API_URL
    # How Telegram is reached when not directly: http://, socks5:// or socks4://, with a login.
    telegram_proxy: SecretStr | None = None
    telegram_wait_seconds: float = Field(default=60.0, ge=0)
    courier_approval: bool = True
    default_locale: Literal["en", "ru"] = "en"
    timezone: str = "UTC"
    migrate_on_start: bool = True
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_lease_seconds: float = Field(default=60.0, gt=0)
    outbox_retention_days: int = Field(default=30, gt=0)
    inbox_lease_seconds: float = Field(default=30.0, gt=0)
    inbox_retention_days: int = Field(default=2, gt=0)
    send_rate_limit: float = Field(default=30.0, gt=0)
    sweep_interval_seconds: float = Field(default=60, gt=0)
    order_overdue_minutes: float = Field(default=60, gt=0)
    # How long a courier has to accept an order offered to them; 0: assigned outright.
    offer_seconds: int = Field(default=60, ge=0, le=3600)
    offer_misses_to_offline: int = Field(default=2, ge=1)
    # nearest: the free courier nearest the order's pickup point, by their shared locations.
    dispatch_rule: Literal["nearest", "longest_free"] = "nearest"
    location_fresh_seconds: int = Field(default=600, ge=10, le=86400)
    daily_report_at: str = "21:00"
    database_wait_seconds: float = Field(default=60.0, ge=0)
    shutdown_grace_seconds: float = Field(default=5.0, ge=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("bot_token")
    @classmethod
    def _token_looks_right(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value().endswith(PLACEHOLDER_TOKEN):
            raise ValueError("is .env.example's placeholder: put your token from @BotFather in it")
        if not _BOT_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("is not a bot token (expected <digits>:<secret>)")
        return value

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _tokens(cls, value: object) -> object:
        if isinstance(value, str):
            tokens = [part.strip() for part in value.split(",") if part.strip()]
            if any(len(token) < 16 for token in tokens):
                raise ValueError("needs tokens of 16 characters or more")
            return frozenset(tokens)
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _secret_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _WEBHOOK_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("needs 16 to 256 characters, each A-Z, a-z, 0-9, _ or -")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError("is not a Redis URL like redis://localhost:6379/0")
        return value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part for part in value.replace(" ", "").split(",") if part]
            if not all(part.isdigit() for part in parts):
                raise ValueError(
                    "takes numeric Telegram ids, comma-separated, not @usernames:"
                    " send /start to the bot to see yours"
                )
            return frozenset(int(part) for part in parts)
        return value

    @field_validator("log_level", "dispatch_rule", mode="before")
    @classmethod
    def _any_case(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        return value.upper() if info.field_name == "log_level" else value.lower()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("daily_report_at")
    @classmethod
    def _hours_and_minutes(cls, value: str) -> str:
        if not _HH_MM.fullmatch(value):
            raise ValueError("is not a time like 21:00")
        return value

    @field_validator("database_url")
    @classmethod
    def _async_database(cls, value: str) -> str:
        """An async driver we support; a relative SQLite path is taken from the project folder."""
        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("is not a database URL") from None
        backend, _, driver = url.drivername.partition("+")
        if ASYNC_DRIVERS.get(backend) != driver:
            raise ValueError(
                "needs an async driver, like sqlite+aiosqlite:///path"
                " or postgresql+asyncpg://user@host/database"
            )
        return anchored(value)

    @field_validator("telegram_api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not _is_http_url(value):
            raise ValueError("is not an http(s) URL like https://api.telegram.org")
        return value.rstrip("/")

    @field_validator("telegram_proxy")
    @classmethod
    def _proxy_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            parts = urlsplit(value.get_secret_value())
            if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
                raise ValueError("is not a proxy URL like http://proxy:3128 or socks5://proxy:1080")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        if value is not None and not _is_http_url(value):
            raise ValueError("is not a URL like https://bot.example.com/telegram")
        return value

    @model_validator(mode="after")
    def _webhook_complete(self) -> "Settings":
        """A webhook needs its secret, and HTTPS unless a Bot API server of our own calls it."""
        if self.webhook_url is None:
            return self
        if self.webhook_secret is None:
            raise ValueError("WEBHOOK_URL needs WEBHOOK_SECRET")
        official = self.telegram_api_url == OFFICIAL_API_URL
        if official and urlsplit(self.webhook_url).scheme != "https":
            raise ValueError("WEBHOOK_URL must be https:// for Telegram")
        return self

    @property
    def nearest(self) -> bool:
        return self.dispatch_rule == "nearest"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def webhook(self) -> tuple[str, str] | None:
        """WEBHOOK_URL and WEBHOOK_SECRET, when updates come over a webhook."""
        if self.webhook_url is None or self.webhook_secret is None:
            return None
        return self.webhook_url, self.webhook_secret.get_secret_value()

    @property
    def web_on(self) -> bool:
        """The web server runs for a webhook, for the API, or when WEB_PORT is set."""
        return self.webhook_url is not None or bool(self.api_tokens) or self.web_port is not None

    @property
    def port(self) -> int:
        """WEB_PORT, or 8080."""
        return self.web_port or 8080

    def secrets(self) -> list[tuple[str, str]]:
        """What must never appear in a log line, and what shows instead."""
        secrets = [(self.bot_token.get_secret_value(), "BOT_TOKEN")]
        secrets += [(token.get_secret_value(), "API_TOKEN") for token in self.api_tokens]
        if self.webhook_secret is not None:
            secrets.append((self.webhook_secret.get_secret_value(), "WEBHOOK_SECRET"))
        if self.telegram_proxy is not None and (login := _login(self.telegram_proxy)):
            secrets.append((login, "TELEGRAM_PROXY's login"))
        return secrets

    @property
    def report_time(self) -> time:
        return time.fromisoformat(self.daily_report_at)


def _login(proxy: SecretStr) -> str | None:
    """The user:password of a proxy URL, if it has one."""
    netloc = urlsplit(proxy.get_secret_value()).netloc
    return netloc.rpartition("@")[0] or None


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018  # raises on a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def describe_errors(error: ValidationError) -> str:
    """One line naming each bad setting, never echoing its value (it may be the token)."""
    problems = []
    for item in error.errors():
        name = ".".join(str(part) for part in item["loc"]).upper()
        message = "is required" if item["type"] == "missing" else item["msg"]
        problems.append(f"{name} {message.removeprefix('Value error, ')}".strip())
    return "; ".join(problems)
