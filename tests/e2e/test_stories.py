"""Whole stories against the real bot process over HTTP."""

from pathlib import Path

import pytest

from playground.telegram import Call, FakeTelegram
from tests.e2e.conftest import (
    ADMIN,
    TOKEN,
    bot_environment,
    free_port,
    output_of,
    register,
    sent_to,
    start_bot,
    start_ready,
    stop_bot,
)
from tests.e2e.tcp_proxy import ConnectProxy

COURIER = 7
STRANGER = 999
GROUP = -100500


def answered(call: Call) -> bool:
    return call.method == "answerCallbackQuery"


async def add_district(tg: FakeTelegram, name: str) -> None:
    """Updates are handled concurrently: wait for the answer before going on."""
    mark = tg.mark()
    await tg.send(ADMIN, f"/add_district {name}")
    await tg.wait_for(sent_to(ADMIN, f"{name} "), since=mark)


async def register_and_approve(
    tg: FakeTelegram, user_id: int, name: str, language: str = "en"
) -> None:
    mark = tg.mark()
    await register(tg, user_id, name, language)
    request = await tg.wait_for(sent_to(ADMIN, name, "asks to join"), since=mark)
    approve = request.buttons()[0]
    mark = tg.mark()
    await tg.tap(ADMIN, request, approve[1])
    await tg.wait_for(sent_to(user_id), since=mark)  # "you are approved"


async def test_courier_registers_dispatcher_posts_in_group_courier_completes(
    running_bot: FakeTelegram,
):
    tg = running_bot
    await add_district(tg, "North")
    await register_and_approve(tg, COURIER, "Ann")

    mark = tg.mark()
    await tg.send(ADMIN, "/order north 2 pizzas & <cola>", chat_id=GROUP)
    await tg.wait_for(sent_to(GROUP, "Order <b>#1</b> (North) went to Ann (#1)."), since=mark)
    order = await tg.wait_for(
        sent_to(COURIER, "New order <b>#1</b>", "2 pizzas &amp; &lt;cola&gt;"), since=mark
    )
    ((label, complete),) = order.buttons()
    assert "Complete" in label

    mark = tg.mark()
    await tg.tap(STRANGER, order, complete)
    refusal = await tg.wait_for(answered, since=mark)
    assert refusal.params.get("show_alert") is True
    assert refusal.params["text"] == "This is for registered couriers. Join with /register."

    mark = tg.mark()
    await tg.tap(COURIER, order, complete)
    await tg.wait_for(answered, since=mark)
    edited = await tg.wait_for(sent_to(COURIER, "Order #1 delivered in"), since=mark)
    assert edited.method == "editMessageText"
    assert not edited.buttons()
    await tg.wait_for(sent_to(GROUP, "Order #1 delivered by Ann (#1)"), since=mark)

    mark = tg.mark()
    await tg.tap(COURIER, order, complete)
    again = await tg.wait_for(answered, since=mark)
    assert "already completed" in again.params["text"]


async def test_a_queued_order_goes_out_when_the_courier_completes(running_bot: FakeTelegram):
    tg = running_bot
    await add_district(tg, "North")
    await register_and_approve(tg, COURIER, "Ann")
    await tg.send(ADMIN, "/order North first", chat_id=GROUP)
    first = await tg.wait_for(sent_to(COURIER, "New order <b>#1</b>"))
    mark = tg.mark()
    await tg.send(ADMIN, "/order North second", chat_id=GROUP)
    await tg.wait_for(sent_to(GROUP, "#2</b> (North) is queued, place 1"), since=mark)

    mark = tg.mark()
    await tg.tap(COURIER, first, first.buttons()[0][1])
    second = await tg.wait_for(sent_to(COURIER, "New order <b>#2</b>", "second"), since=mark)
    assert second.method == "sendMessage"
    assert "Complete" in second.buttons()[0][0]
    await tg.wait_for(sent_to(GROUP, "Order #2 went to Ann (#1)."), since=mark)


async def test_russian_and_english_users(running_bot: FakeTelegram):
    tg = running_bot
    await add_district(tg, "Север")
    await register_and_approve(tg, COURIER, "Анна", language="ru")
    mark = tg.mark()
    await tg.send(COURIER, "/me", language="ru")
    await tg.wait_for(sent_to(COURIER, "Среднее время доставки: пока нет данных"), since=mark)
    mark = tg.mark()
    await tg.send(ADMIN, "/order Север суп", language="en")
    await tg.wait_for(sent_to(ADMIN, "went to Анна (#1)"), since=mark)
    order = await tg.wait_for(sent_to(COURIER, "Новый заказ <b>#1</b>"), since=mark)
    assert order.buttons()[0][0] == "✅ Выполнен"


async def test_startup_survives_telegram_being_down(telegram, tmp_path: Path):
    fake, url = telegram
    fake.fail_get_me = 2  # the start retries getMe, with a backoff
    process = await start_ready(fake, bot_environment(url, tmp_path / "down.sqlite3"), tmp_path)
    await fake.send(STRANGER, "/start")
    await fake.wait_for(sent_to(STRANGER, f"<code>{STRANGER}</code>"))
    log = await stop_bot(process)
    assert "Telegram is unreachable" in log
    assert TOKEN not in log


async def test_an_unreachable_telegram_is_given_up_with_one_clear_line(tmp_path: Path):
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = bot_environment(nowhere, tmp_path / "never.sqlite3", TELEGRAM_WAIT_SECONDS="2")
    process = await start_bot(env, tmp_path)
    output = await output_of(process)
    assert process.returncode == 2
    last = output.strip().splitlines()[-1]
    assert last.startswith(f"Cannot reach Telegram at {nowhere} directly"), output
    assert "TELEGRAM_PROXY" in last
    assert "network" in last
    assert "Traceback" not in output
    assert output.count("Telegram is unreachable") == 1, output  # the rest at DEBUG


async def test_telegram_through_a_proxy(telegram, tmp_path: Path):
    fake, url = telegram
    proxy = await ConnectProxy().start()
    try:
        proxied = f"http://dispatch:proxy-secret-4711@127.0.0.1:{proxy.port}"
        env = bot_environment(url, tmp_path / "proxied.sqlite3", TELEGRAM_PROXY=proxied)
        process = await start_ready(fake, env, tmp_path)
        await fake.send(STRANGER, "/start")
        await fake.wait_for(sent_to(STRANGER, f"<code>{STRANGER}</code>"))
        log = await stop_bot(process)
    finally:
        await proxy.stop()
    assert {target for target, _ in proxy.tunnels} == {url.removeprefix("http://")}
    assert all(login.startswith("Basic ") for _, login in proxy.tunnels)
    assert "proxy-secret-4711" not in log


@pytest.mark.parametrize(
    ("token", "last_line"),
    [
        (
            "not-a-token-secret-value",
            "Configuration error: BOT_TOKEN is not a bot token (expected <digits>:<secret>)."
            " See .env.example.",
        ),
        (None, "Configuration error: BOT_TOKEN is required. See .env.example."),
        ("654321:revoked-or-mistyped", "Telegram rejected BOT_TOKEN: check it with @BotFather."),
    ],
)
async def test_a_bad_token_stops_the_bot_with_one_clear_line(
    telegram, tmp_path: Path, token: str | None, last_line: str
):
    _, url = telegram
    env = bot_environment(url, tmp_path / "never.sqlite3")
    if token is None:
        del env["BOT_TOKEN"]
    else:
        env["BOT_TOKEN"] = token
    process = await start_bot(env, tmp_path)
    output = await output_of(process)
    assert process.returncode == 2
    assert output.strip().splitlines()[-1] == last_line
    assert "Traceback" not in output
    if token:
        assert token.split(":")[-1] not in output
