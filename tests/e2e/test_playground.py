"""The playground as a newcomer meets it: `python -m bot demo`, driven in a real headless
Chromium (Debian's `chromium`, which .ci/run installs)."""

import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Page, Route, async_playwright, expect
from playwright.async_api import Request as BrowserRequest

from tests.e2e.conftest import ROOT, BotProcess, eventually, free_port, start_bot, stop_bot

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium")
SCREENSHOT = ROOT / "docs" / "playground.png"
DAN, ANN, BOB = 1002, 2001, 2002
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None, reason="no Chromium: install Debian's chromium package (.ci/run does)"
    ),
    pytest.mark.asyncio(loop_scope="module"),  # one playground and one browser for them all
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def playground(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The playground's address, once it prints it."""
    port = free_port()
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "WEB_PORT": str(port)}
    demo = await start_bot(env, tmp_path_factory.mktemp("playground"), "demo")
    BotProcess.started.remove(demo)  # it outlives each test; stopped below

    async def says_where() -> bool:
        return "The playground is at" in demo.output() or demo.returncode is not None

    await eventually(says_where, within=60)
    assert demo.returncode is None, demo.output()
    yield f"http://127.0.0.1:{port}/playground"
    log = await stop_bot(demo)
    demo.log.unlink()
    assert demo.returncode == 0, log
    assert "Traceback" not in log, log
    folder = re.search(r"Its data is in (\S+) until", log)
    assert folder is not None, log
    assert not Path(folder.group(1)).exists()  # noqa: ASYNC240  # it leaves nothing behind


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as driver:
        chromium = await driver.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        await chromium.close()


def named(page: Page, name: str) -> Locator:
    """The pane of the person with this name (whose name other panes may mention)."""
    return page.locator("section.pane", has=page.locator("h2 .name", has_text=name))


def pane(page: Page, person: int) -> Locator:
    return page.locator(f'section.pane[data-person="{person}"]')


async def say(page: Page, person: int, text: str) -> None:
    field = pane(page, person).locator(".compose input")
    await field.fill(text)
    await field.press("Enter")


async def test_an_order_posted_accepted_delivered_and_heard(
    playground: str, browser: Browser
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(playground)
    await expect(pane(page, DAN)).to_contain_text("You are a dispatcher")

    await say(page, DAN, "/order Old Town 2 pizzas, flat 4")
    new_order = page.locator(".msg.bot", has_text="New order")
    await expect(new_order).to_have_count(1)
    # Pinned by ids: the texts change when the message is edited.
    courier_id = int(
        await page.locator("section.pane", has=new_order).get_attribute("data-person") or 0
    )
    assert courier_id in (ANN, BOB)  # of Old Town
    courier = pane(page, courier_id)
    offered = courier.locator(f'[data-message="{await new_order.get_attribute("data-message")}"]')
    await offered.get_by_role("button", name="Accept").click()
    await expect(pane(page, DAN)).to_contain_text("accepted by")
    await offered.get_by_role("button", name="Complete").click()  # the offer, edited

    await expect(pane(page, DAN)).to_contain_text("delivered")
    await expect(offered).to_contain_text("delivered")  # edited in place, its button gone
    await expect(offered.locator(".edited")).to_be_visible()
    await expect(offered.get_by_role("button")).to_have_count(0)
    await expect(courier.locator(".msg.popup").last).to_contain_text("Delivered")
    await page.screenshot(path=str(SCREENSHOT))


async def newcomer(browser: Browser, playground: str, name: str) -> tuple[Page, Locator]:
    """The page, with a person of this name added, and their pane."""
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await page.goto(playground)
    await page.fill("#add-person input[name=name]", name)
    await page.click("#add-person button")
    chat = named(page, name)
    await expect(chat).to_be_visible()
    return page, chat


async def test_a_newcomer_registers_with_keyboards(playground: str, browser: Browser) -> None:
    _, eve = await newcomer(browser, playground, "Eve")
    eve_id = int(await eve.get_attribute("data-person") or 0)

    await eve.locator(".menu-button").click()
    await eve.locator(".menu button", has_text="/register").click()
    await eve.locator(".compose input").press("Enter")
    await eve.locator(".keyboard button", has_text="Eve").click()  # the reply keyboard
    await eve.locator(".msg.bot button", has_text="Old Town").click()
    await expect(eve.locator(".msg.bot button", has_text="✅")).to_be_visible()  # edited
    await eve.locator(".msg.bot button", has_text="Done").click()
    await expect(eve).to_contain_text("Thanks, Eve")
    await expect(eve.locator(".keyboard")).to_be_hidden()

    await eve.locator(".place-button").click()
    await eve.locator(".place button").click()
    await expect(eve.locator(".msg.user").last).to_contain_text("📍 51.5072, -0.1276")
    assert eve_id >= 3001


async def test_an_invite_link_is_opened_as_someone_on_the_page(
    playground: str, browser: Browser
) -> None:
    page, zed = await newcomer(browser, playground, "Zed")

    await say(page, DAN, "/invite")
    link = pane(page, DAN).locator(".msg.bot a", has_text="?start=")
    await link.click()
    await pane(page, DAN).locator(".menu button", has_text="Open as Zed").click()
    await expect(zed.locator(".msg.user").first).to_contain_text("/start ")
    await expect(zed.locator(".msg.bot").last).to_contain_text("name")  # the dialog asks


async def test_usable_at_360_pixels(playground: str, browser: Browser) -> None:
    page = await browser.new_page(viewport={"width": 360, "height": 740})
    await page.goto(playground)
    await page.locator("#tabs button", has_text="Ann").click()
    ann = pane(page, ANN)
    await expect(ann).to_be_visible()
    await expect(pane(page, DAN)).to_be_hidden()
    await expect(ann.locator(".compose input")).to_be_in_viewport()
    await say(page, ANN, "/me")
    await expect(ann).to_contain_text("Ann")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 360, f"the page scrolls sideways: {width} px"


async def test_api_docs_are_linked_and_load_offline(playground: str, browser: Browser) -> None:
    context = await browser.new_context()
    blocked: list[str] = []

    async def only_local(route: Route, request: BrowserRequest) -> None:
        if request.url.startswith("http://127.0.0.1"):
            await route.continue_()
        else:
            blocked.append(request.url)
            await route.abort()

    await context.route("**/*", only_local)
    page = await context.new_page()
    await page.goto(playground)
    await expect(page.locator("#token")).to_have_text("playground-demo-token")
    async with context.expect_page() as opened:
        await page.click("#docs")
    docs = await opened.value
    await expect(docs.locator(".swagger-ui").first).to_be_visible()
    await expect(docs.get_by_text("/order").first).to_be_visible()
    assert not blocked, blocked
