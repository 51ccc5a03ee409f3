"""Parsing command arguments. Bad arguments raise the same errors services do."""

from aiogram.filters import CommandObject

from services.errors import ErrorCode, InvalidInput

# Telegram user ids and our row ids all fit in 18 digits; longer is never a number of ours.
MAX_DIGITS = 18


def _usage(command: CommandObject) -> InvalidInput:
    return InvalidInput(ErrorCode.USAGE, command=command.command)


def number(text: str, command: CommandObject) -> int:
    """`12` or `#12`; nothing else."""
    digits = text.strip().removeprefix("#")
    if not digits.isascii() or not digits.isdigit() or len(digits) > MAX_DIGITS:
        raise _usage(command)
    return int(digits)


def text_argument(command: CommandObject) -> str:
    if not command.args or not command.args.strip():
        raise _usage(command)
    return command.args.strip()


def numbers(command: CommandObject, least: int, most: int) -> list[int]:
    parts = (command.args or "").split()
    if not least <= len(parts) <= most:
        raise _usage(command)
    return [number(part, command) for part in parts]
