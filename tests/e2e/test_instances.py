"""Many instances: `python -m bot` in webhook mode on PostgreSQL and Redis, behind the fake
server, which hands each update to one instance at random as a load balancer would."""

import asyncio
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, make_url, select

from db.engine import create_engine
from db.models import Courier, DailyReport, Order, OutboxMessage
from db.uow import UnitOfWorkFactory
from playground.telegram import Call, FakeTelegram
from tests.e2e.conftest import (
    BotProcess,
    bot_environment,
    count_orders,
    count_rows,
    couriers_complete_everything,
    eventually,
    free_port,
    orders_posted,
    output_of,
    post_orders,
    register,
    seed,
    sent_to,
    start_bot,
    start_ready,
    stop_bot,
)
from tests.e2e.tcp_proxy import TcpProxy
from tests.integration.workload import audit

HOOK = "/telegram/updates"
SECRET = "a-secret-of-the-tests-0123456789"
COURIERS = list(range(10_001, 10_021))
DISPATCHERS = list(range(2_001, 2_031))
ORDERS = 80  # 4 a courier: each courier chat takes about a message a second


def webhook_environment(
    api_url: str, tmp_path: Path, port: int, hook_port: int | None = None, **extra: str
) -> dict[str, str]:
    """One instance on its own web `port`; the one webhook URL Telegram knows is on
    `hook_port` (the load balancer's, here the first instance's)."""
    return bot_environment(
        api_url,
        tmp_path / "unused.sqlite3",
        WEBHOOK_URL=f"http://127.0.0.1:{hook_port or port}{HOOK}",
        WEBHOOK_SECRET=SECRET,
        WEB_PORT=str(port),
        **extra,
    )


async def health(port: int) -> int:
    """/healthz's status, or 0 while nothing answers on the port."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/healthz") as answer,
        ):
            return answer.status
    except aiohttp.ClientError:
        return 0


async def healthy(port: int) -> bool:
    return await health(port) == 200


async def stop_cleanly(bot: BotProcess) -> None:
    log = await stop_bot(bot)
    assert bot.returncode == 0, log
    assert "Traceback" not in log, log


async def test_two_instances_keep_every_promise(
    telegram: tuple[FakeTelegram, str], tmp_path: Path, fresh_postgres_url: str, redis_url: str
):
    fake, url = telegram
    ports = [free_port(), free_port()]
    fake.deliveries.instances = [f"http://127.0.0.1:{port}{HOOK}" for port in ports]
    shared = {
        "DATABASE_URL": fresh_postgres_url,
        "REDIS_URL": redis_url,
        "COURIER_APPROVAL": "false",
        "SWEEP_INTERVAL_SECONDS": "1",
        "ORDER_OVERDUE_MINUTES": "0.005",  # 0.3 s: reminders race on both instances
        "DAILY_REPORT_AT": "00:00",  # passed: both catch today's report up when restarted
    }
    # Both start on an empty database at once, and migrate it one after the other.
    bots = [
        await start_bot(webhook_environment(url, tmp_path, port, ports[0], **shared), tmp_path)
        for port in ports
    ]
    for port in ports:
        await eventually(lambda port=port: healthy(port), within=60)
    await seed(fresh_postgres_url, districts=["North"], couriers={}, dispatchers=DISPATCHERS)

    await asyncio.gather(*(register(fake, c, f"C{c}") for c in COURIERS))
    await eventually(lambda: _active_couriers(fresh_postgres_url, len(COURIERS)), within=30)
    await post_orders(fake, DISPATCHERS, ORDERS)
    took = await couriers_complete_everything(fake, ORDERS, within=300)
    await eventually(lambda: _outbox_settled(fresh_postgres_url), within=60)
    for bot in bots:
        await stop_cleanly(bot)
    # Restarted at once, both find today's report missed (a day with orders): it goes once.
    bots = [
        await start_bot(webhook_environment(url, tmp_path, port, ports[0], **shared), tmp_path)
        for port in ports
    ]
    for port in ports:
        await eventually(lambda port=port: healthy(port), within=60)
    await eventually(lambda: _reported(fresh_postgres_url), within=30)
    for bot in bots:
        await stop_cleanly(bot)

    print(f"\n{ORDERS} orders through two instances in {took:.1f} s")
    assert not any(call.method == "deleteWebhook" for call in fake.calls)
    _assert_dialogs_hopped(fake)
    engine = create_engine(fresh_postgres_url)
    try:
        report = await audit(UnitOfWorkFactory(engine))
        assert report.violations == [], report.violations[:10]
        async with engine.connect() as connection:
            completed = select(func.count()).where(Order.status == "completed")
            assert (await connection.execute(completed)).scalar_one() == ORDERS
            rows = list((await connection.execute(select(OutboxMessage))).all())
            days = (await connection.execute(select(func.count()).select_from(DailyReport))).one()
    finally:
        await engine.dispose()
    _assert_each_notice_sent_once(fake, rows)  # type: ignore[arg-type]
    kinds = Counter(row.notice for row in rows)
    assert kinds["order_overdue"] > 0, kinds
    assert kinds["daily_report"] > 0, kinds
    assert days == (1,)


def _assert_dialogs_hopped(fake: FakeTelegram) -> None:
    """Registration dialogs went on across instances: their state lives in Redis."""
    instances: dict[int, set[str]] = {}
    for update in fake.updates:
        sender = (update.get("message") or update.get("callback_query") or {})["from"]["id"]
        if sender in COURIERS:
            instances.setdefault(sender, set()).add(fake.deliveries.taken_by[update["update_id"]])
    hopped = [courier for courier, seen in instances.items() if len(seen) == 2]
    assert len(hopped) >= len(COURIERS) // 2, instances


def _assert_each_notice_sent_once(fake: FakeTelegram, rows: list[OutboxMessage]) -> None:
    """Every row went out, as exactly one message; none was sent twice by two instances."""
    assert [row for row in rows if row.state != "sent"] == []
    sends: dict[int, Call] = {}
    texts: Counter[tuple[int, str]] = Counter()
    for call in fake.calls:
        if call.method == "sendMessage":
            sends[call.result["message_id"]] = call
            texts[call.chat_id, call.text] += 1
    for row in rows:
        if row.message_id is None:  # a notice that only edits earlier messages
            continue
        call = sends[row.message_id]
        assert call.chat_id == row.chat_id
        assert texts[call.chat_id, call.text] == 1, (row.notice, call.chat_id, call.text)


async def _active_couriers(url: str, expected: int) -> bool:
    query = select(func.count()).where(Courier.status == "active")
    return await count_rows(url, query) == expected


async def _reported(url: str) -> bool:
    sent = (OutboxMessage.notice == "daily_report") & (OutboxMessage.state == "sent")
    return await count_rows(url, select(func.count()).where(sent)) > 0 and await _outbox_settled(
        url
    )


async def _outbox_settled(url: str) -> bool:
    return await count_rows(url, select(func.count()).where(OutboxMessage.state == "pending")) == 0


async def test_a_second_instance_on_one_sqlite_file_is_refused(
    telegram: tuple[FakeTelegram, str], tmp_path: Path
):
    fake, url = telegram
    database = tmp_path / "one.sqlite3"
    first = await start_ready(fake, bot_environment(url, database), tmp_path)

    second = await start_bot(bot_environment(url, database), tmp_path)
    log = await output_of(second)

    assert second.returncode == 2, log
    assert f"Another instance of the bot is running on {database}" in log, log
    assert "Traceback" not in log
    await stop_cleanly(first)


# One instance in webhook mode, its database and Redis behind proxies that a test can cut.


@pytest.fixture
async def proxied(fresh_postgres_url: str, redis_url: str) -> tuple[TcpProxy, TcpProxy]:
    postgres, redis = make_url(fresh_postgres_url), make_url(redis_url)
    return (
        await TcpProxy(postgres.host or "127.0.0.1", postgres.port or 5432).start(),
        await TcpProxy(redis.host or "127.0.0.1", redis.port or 6379).start(),
    )


async def test_webhook_health_and_metrics(
    telegram: tuple[FakeTelegram, str],
    tmp_path: Path,
    fresh_postgres_url: str,
    redis_url: str,
    proxied: tuple[TcpProxy, TcpProxy],
):
    fake, url = telegram
    postgres, redis = proxied
    database_url = make_url(fresh_postgres_url).set(host="127.0.0.1", port=postgres.port)
    await seed(fresh_postgres_url, districts=["North"], couriers={7: "North"}, dispatchers=[2_001])
    port = free_port()
    environment = webhook_environment(
        url,
        tmp_path,
        port,
        DATABASE_URL=database_url.render_as_string(hide_password=False),
        REDIS_URL=str(make_url(redis_url).set(host="127.0.0.1", port=redis.port)),
    )
    bot = await start_bot(environment, tmp_path)
    await eventually(lambda: healthy(port), within=60)
    before = await _metrics(port)

    await _refuses_updates_without_the_secret(fake, port, fresh_postgres_url)
    for n in range(3):
        await fake.send(2_001, f"/order North parcel {n + 1}")
    await fake.wait_for(sent_to(2_001, "#4</b> (North) is queued, place 3"))
    after = await _metrics(port)
    await _health_follows_its_services(port, postgres, redis)
    await stop_cleanly(bot)
    await postgres.stop()
    await redis.stop()

    handled = ("dispatch_updates_total", (("outcome", "handled"), ("type", "message")))
    assert after[handled] - before.get(handled, 0) == 4  # with the one sent by hand
    for state, count in (("queued", 3), ("assigned", 1)):
        assert after["dispatch_orders", (("state", state),)] == count
    assert after["dispatch_outbox_backlog", ()] >= 0
    assert after["dispatch_update_seconds_count", (("type", "message"),)] >= 3


async def _refuses_updates_without_the_secret(fake: FakeTelegram, port: int, url: str) -> None:
    """An /order with no secret or a wrong one gets 401 and changes nothing; with the right
    one, the same update is taken (so it is the secret that decided)."""
    update = {
        "update_id": 999_999,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": 2_001, "type": "private"},
            "from": {"id": 2_001, "is_bot": False, "first_name": "Dee"},
            "text": "/order North forged",
        },
    }
    hook = f"http://127.0.0.1:{port}{HOOK}"
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "not-the-secret-at-all-000"}):
            async with session.post(hook, json=update, headers=headers) as answer:
                assert answer.status == 401
        right = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        async with session.post(hook, data=b"{not json", headers=right) as answer:
            assert answer.status == 400
        await asyncio.sleep(0.5)
        assert await count_orders(url) == 0
        assert not any(call.chat_id == 2_001 for call in fake.calls)
        async with session.post(hook, json=update, headers=right) as answer:
            assert answer.status == 200
    await eventually(lambda: orders_posted(url, 1), within=10)


async def _health_follows_its_services(port: int, postgres: TcpProxy, redis: TcpProxy) -> None:
    for service in (postgres, redis):
        await service.cut()
        await eventually(lambda: _status_is(port, 503), within=20)
        await service.restore()
        await eventually(lambda: healthy(port), within=20)


async def _status_is(port: int, status: int) -> bool:
    return await health(port) == status


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _metrics(port: int) -> Samples:
    """/metrics, parsed as Prometheus text: (sample, sorted labels) -> value."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/metrics") as answer,
    ):
        assert answer.status == 200
        text = await answer.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_an_update_cut_short_by_a_deploy_is_not_handled_twice(
    telegram: tuple[FakeTelegram, str], tmp_path: Path
):
    """Telegram is slow to take the dispatcher's reply, longer than the stop's grace. The
    webhook has answered already, so the restarted bot gets no second copy of the /order."""
    fake, url = telegram
    database = tmp_path / "deploy.sqlite3"
    await seed(database, districts=["North"], couriers={7: "North"}, dispatchers=[2_001])
    port = free_port()
    environment = webhook_environment(url, tmp_path, port, SHUTDOWN_GRACE_SECONDS="1")
    environment["DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"
    first = await start_bot(environment, tmp_path)
    await eventually(lambda: healthy(port), within=60)
    fake.slow[2_001] = 5.0

    await fake.send(2_001, "/order North soup")
    await fake.wait_for(lambda c: c.chat_id == 2_001, arrived=True)  # committed, replying
    await stop_bot(first)
    fake.slow.clear()
    second = await start_bot(environment, tmp_path)
    await eventually(lambda: healthy(port), within=60)
    await asyncio.sleep(2)  # time for a second copy to arrive, were there one
    await stop_cleanly(second)

    assert await count_orders(database) == 1
    assert fake.deliveries.refusals == []
