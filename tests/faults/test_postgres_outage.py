"""A PostgreSQL outage under a running server, on a throwaway cluster of the test's own (initdb into
a temporary directory, own port; skipped with the reason printed when it cannot be made quickly).
While it is down the webhook answers 503 (WeChat retries) with one warning, and nobody is told a
report was filed; when it is back, WeChat's retries are handled exactly once."""
from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from harness import FakeWeChatServer, Rig, ticket_number
from own_postgres import OwnPostgres
from own_redis import OwnRedis

pytestmark = pytest.mark.faults

OUTAGE_WARNING = "answering 503 until it is back"


@pytest.fixture
async def pg_rig(tmp_path: Path) -> AsyncIterator[tuple[Rig, OwnPostgres]]:
    cluster, why = OwnPostgres.create()
    if cluster is None:
        print(f"own PostgreSQL cluster not made: {why}")
        pytest.skip(f"no throwaway PostgreSQL cluster: {why}")
    redis, wechat = OwnRedis(tmp_path), FakeWeChatServer()
    rig = Rig(cluster.url, redis, wechat, tmp_path)
    try:
        cluster.start()
        redis.start()
        await wechat.start()
        await rig.seed()
        await rig.start()
        yield rig, cluster
    finally:
        await rig.stop()
        redis.kill()
        await wechat.close()
        cluster.destroy()


async def retry_until_handled(rig: Rig, xml: str, within: float = 30.0) -> str:
    """WeChat's retries of one message until it gets an answer that is not a 503."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status, reply = await rig.post(xml)
        if status == 200 and reply:
            return reply
        assert status in (200, 503), status
        await asyncio.sleep(0.3)
    raise AssertionError("the retried message was never answered")


async def test_postgres_down_is_answered_503_and_the_retries_are_handled_once(pg_rig) -> None:
    rig, cluster = pg_rig
    deputy = await rig.bind_deputy()
    citizen = "oCitizen_fault_pgdown_0001"
    await rig.walk_form(citizen)
    confirm, question = rig.text_xml(citizen, "是"), rig.text_xml("oCitizen_fault_pgdown_0002", "我的诉求")

    cluster.stop()
    for xml in (confirm, question, confirm, question):  # the messages and WeChat's first retries
        status, reply = await rig.post(xml)
        assert (status, reply) == (503, None)  # nobody is told anything, least of all "filed"
    assert rig.log_text().count(OUTAGE_WARNING) == 1  # one warning for the outage, not one per request
    assert "wechat handler failed" not in rig.log_text()  # an outage, not a bug with an apology

    await asyncio.sleep(3)  # the delivery worker and the scheduled jobs meet the outage too
    cluster.start()
    reply = await retry_until_handled(rig, confirm)
    number = ticket_number(reply)
    assert number is not None, reply
    assert await retry_until_handled(rig, confirm) == reply  # a further retry: the same answer
    assert await retry_until_handled(rig, question)
    filed = await rig.query(lambda uow: uow.tickets.list_for_citizen(citizen))
    assert [t.number for t in filed] == [number]
    await rig.delivered()
    told = [t for t in rig.api.sent_texts(deputy) if f"#{number}" in t]
    assert len(told) == 1, told  # the deputy's notice of the new ticket, once
    assert "Traceback" not in rig.log_text(), rig.log_text()[-4000:]  # an outage is not a bug
