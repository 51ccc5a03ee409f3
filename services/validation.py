"""Input rules shared by the use cases."""

from services.errors import InvalidInput

NAME_MAX = 64
DESCRIPTION_MAX = 1000


def clean_name(value: str, field: str) -> str:
    """Trim and fold runs of white space; 1 to 64 characters."""
    name = " ".join(value.split())
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidInput(f"{field}_length", min=1, max=NAME_MAX)
    return name


def clean_description(value: str) -> str:
    description = value.strip()
    if not 1 <= len(description) <= DESCRIPTION_MAX:
        raise InvalidInput("description_length", min=1, max=DESCRIPTION_MAX)
    return description


def name_key(name: str) -> str:
    """What makes two names the same: case-insensitive in every alphabet."""
    return name.casefold()
