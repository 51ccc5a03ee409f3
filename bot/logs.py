"""Logging set-up: context in every line, and no secret (bot token, API token) in any."""

import logging
import sys
from collections.abc import Iterable

from sqlalchemy.exc import DBAPIError

from handlers.errors import transient


class RedactSecrets(logging.Filter):
    """Replace each secret wherever it would appear, e.g. in a logged request URL."""

    def __init__(self, secrets: Iterable[tuple[str, str]]) -> None:
        super().__init__()
        self.secrets = [(secret, name) for secret, name in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        for secret, name in self.secrets:
            redacted = redacted.replace(secret, f"<{name}>")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure(level: str, secrets: Iterable[tuple[str, str]]) -> None:
    """Log at `level`; `secrets` are (value, what to show instead) pairs."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Quiet at INFO: one line a start (bot.serve), not each library's account of its own.
    for chatty in ("aiogram.event", "uvicorn.error", "alembic", "apscheduler"):
        logging.getLogger(chatty).setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)


def log_failure(logger: logging.Logger, message: str, *args: object) -> None:
    """Call in an `except` block: one line when the database or Redis (or the network) is down,
    which says all there is to say in an outage; the whole traceback for anything else."""
    error = sys.exc_info()[1]
    if _unreachable(error):
        logger.warning(message + " (%r)", *args, error)
    else:
        logger.exception(message, *args)


def _unreachable(error: BaseException | None) -> bool:
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return error is not None and transient(error)
