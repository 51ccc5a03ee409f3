"""Every text in the code exists in Russian, with the same placeholders and markup."""

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "handlers/locales/ru/LC_MESSAGES/messages.po"
PLACEHOLDER_OR_TAG = re.compile(r"\{\w+\}|</?(?:b|i|u|s|code|a)>|&\w+;")


def source_texts() -> set[str]:
    texts: set[str] = set()
    for package in ("handlers", "bot"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            ROOT / package, keywords={"_": None, "__": None}
        ):
            texts.add(message if isinstance(message, str) else message[0])
    return texts


def russian() -> dict[str, str]:
    with CATALOG.open("rb") as source:
        return {m.id: m.string for m in read_po(source) if m.id}


def test_every_text_has_a_russian_translation():
    missing = sorted(source_texts() - {k for k, v in russian().items() if v})
    assert missing == []


@pytest.mark.parametrize("text", sorted(russian()))
def test_translations_keep_placeholders_and_markup(text: str):
    translated = russian()[text]
    assert sorted(PLACEHOLDER_OR_TAG.findall(translated)) == sorted(
        PLACEHOLDER_OR_TAG.findall(text)
    )
