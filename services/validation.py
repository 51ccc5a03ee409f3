"""Input rules shared by the use cases: what a name or a description may be, and when two
names are the same."""

import unicodedata
from collections.abc import Iterator

from db.models import ADDRESS_MAX, MAX_ID, NAME_KEY_MAX, NAME_MAX, Point
from services import geo
from services.errors import ErrorCode, InvalidInput

__all__ = [
    "ADDRESS_MAX",
    "DESCRIPTION_MAX",
    "MAX_ID",
    "NAME_KEY_MAX",
    "NAME_MAX",
    "PAGE_MAX",
    "clean_description",
    "clean_name",
    "clean_point",
    "district_key",
    "name_key",
    "page_window",
]

DESCRIPTION_MAX = 1000
PAGE_MAX = 1000
# Letters that render as nothing; people use them to make a name look empty.
_BLANK_LETTERS = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800"}
# Control (Cc), format (Cf: zero-width, bidi overrides), lone surrogates, line separators.
_INVISIBLE = {"Cc", "Cf", "Cs", "Zl", "Zp"}
# What no description keeps: control characters (PostgreSQL refuses NUL), unencodable
# surrogates, and format characters (zero-width spaces, bidi overrides that turn the rest of
# a message around), but for the joiners that emoji and some scripts are written with.
_UNSTORABLE = {"Cc", "Cs", "Cf"}
_JOINERS = {"\u200c", "\u200d"}
_LINE_BREAKS = {"\u2028", "\u2029"}  # Unicode's own line and paragraph separators


def normalize_name(value: str) -> str:
    """NFKC, without invisible or control characters, with runs of white space folded."""
    visible = (
        ch
        for ch in unicodedata.normalize("NFKC", value)
        if unicodedata.category(ch) not in _INVISIBLE and ch not in _BLANK_LETTERS
    )
    return " ".join("".join(visible).split())


def clean_name(value: str, too_long_or_empty: ErrorCode) -> str:
    """A name of 1 to 64 characters once normalized, else InvalidInput(code)."""
    name = normalize_name(value)
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidInput(too_long_or_empty, min=1, max=NAME_MAX)
    return name


def name_key(name: str) -> str:
    """What makes two names the same: NFKC case folding, the same for lookups and uniqueness."""
    return unicodedata.normalize("NFKC", normalize_name(name).casefold())


def district_key(name: str) -> str:
    """The key a district name is stored under: it must fit its column."""
    key = name_key(name)
    if len(key) > NAME_KEY_MAX:  # folding can triple a length, never more; kept as a guard
        raise InvalidInput(ErrorCode.DISTRICT_NAME_LENGTH, min=1, max=NAME_MAX)
    return key


def clean_description(value: str) -> str:
    """Trimmed, 1 to 1000 characters; line breaks and tabs stay, control and invisible
    characters go (as in names), but for the joiners."""
    description = "".join(_storable(value)).strip()
    if not 1 <= len(description) <= DESCRIPTION_MAX:
        raise InvalidInput(ErrorCode.DESCRIPTION_LENGTH, min=1, max=DESCRIPTION_MAX)
    return description


def clean_point(point: Point | None) -> Point | None:
    """A point with finite coordinates in range (else InvalidInput), its address cleaned as a
    description is, on one line, cut to ADDRESS_MAX; an empty address is none."""
    if point is None:
        return None
    if not geo.valid(point.lat, point.lon):
        raise InvalidInput(ErrorCode.POINT_INVALID)
    address = None
    if point.address is not None:
        kept = "".join(_storable(point.address))
        address = " ".join(kept.split())[:ADDRESS_MAX] or None
    return Point(point.lat, point.lon, address)


def _storable(value: str) -> Iterator[str]:
    return (
        "\n" if ch in _LINE_BREAKS else ch
        for ch in value
        if ch in "\n\t" or ch in _JOINERS or unicodedata.category(ch) not in _UNSTORABLE
    )


def page_window(offset: int, limit: int) -> tuple[int, int]:
    """An offset and a limit the database takes: never negative, never past our ids."""
    return min(max(offset, 0), MAX_ID), min(max(limit, 1), PAGE_MAX)
