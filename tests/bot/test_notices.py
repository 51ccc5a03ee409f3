"""Every kind of notice renders in English and Russian, escaped, within Telegram's limits."""

from dataclasses import replace

import pytest

from handlers.i18n import PoI18n, speaking
from handlers.notices import render
from handlers.texts import MESSAGE_LIMIT
from services import notices
from services.read_models import CourierStats
from tests.services.test_delivery import EXAMPLES, STATS


@pytest.mark.parametrize("locale", ["en", "ru"])
@pytest.mark.parametrize("notice", EXAMPLES, ids=[e.kind for e in EXAMPLES])
def test_every_notice_renders(notice: notices.Notice, locale: str):
    with speaking(PoI18n("en"), locale):
        rendered = render(notice)
    venue = rendered.venue.title + rendered.venue.address if rendered.venue else ""
    shown = rendered.text or rendered.superseded_text or venue
    assert shown
    assert len(shown) <= MESSAGE_LIMIT
    assert "2 pizzas <b>" not in shown  # user text is escaped


def test_a_report_of_a_thousand_couriers_fits_one_message():
    crowd = tuple(CourierStats(n, "N" * 64, 3, None) for n in range(1000))
    with speaking(PoI18n("en"), "ru"):
        text = render(notices.DailyReport(stats=replace(STATS, couriers=crowd))).text
    assert text is not None
    assert len(text) <= MESSAGE_LIMIT
    assert text.endswith("курьеров: " + str(1000 - text.count("N" * 64)))
