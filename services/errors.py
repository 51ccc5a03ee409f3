"""Domain errors: each has a stable `code` and the `params` the chat layer needs to explain it."""

from typing import Any


class DomainError(Exception):
    """Base of every error a user can cause; never a bug."""

    def __init__(self, code: str, **params: Any) -> None:
        super().__init__(code)
        self.code = code
        self.params = params


class NotFound(DomainError):
    """The district, courier, order or invite named does not exist."""


class Forbidden(DomainError):
    """The user's role does not allow this."""


class InvalidInput(DomainError):
    """The values given break a rule (length, emptiness, format)."""


class Conflict(DomainError):
    """The request is valid, but the current state does not allow it."""
