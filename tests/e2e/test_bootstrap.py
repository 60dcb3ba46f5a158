"""The composition root's lifecycle: every job of the table is scheduled, and stop() ends what
start() opened, the NLU's HTTP session included."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.bootstrap import JOBS, BotApp
from bot.settings import Settings


class ClosableNLU:
    closed = False
    learnt: list[Any] | None = None

    async def parse(self, text: str) -> dict[str, Any]:
        return {"intent": {"name": "nlu_fallback", "confidence": 0.0}, "entities": [], "intent_ranking": []}

    async def learn_places(self, stations: Any) -> None:
        self.learnt = list(stations)

    async def close(self) -> None:
        self.closed = True


class NoGateway:
    """Nothing here is sent: the delivery worker is not kicked in these tests."""

    async def send_text(self, openid: str, text: str) -> None:
        raise AssertionError("nothing is sent in this test")

    send_template = create_qrcode = send_text  # type: ignore[assignment]


def settings_for(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",  # type: ignore[call-arg]
                    redis_url="")


async def test_start_schedules_the_job_table_and_stop_closes_the_nlu(tmp_path: Path) -> None:
    nlu = ClosableNLU()
    bot = BotApp(settings_for(tmp_path), nlu=nlu, gateway=NoGateway())
    await bot.start()
    try:
        assert nlu.learnt == []  # the (empty) stations table was read at start
        assert sorted(job.id for job in bot.scheduler.get_jobs()) == sorted(job.id for job in JOBS)
        assert await bot.run_job("drain_queues") == 0  # nothing waits
        assert await bot.run_job("prune_processed_inbound") == 0  # nothing is a week old
    finally:
        await bot.stop()
    assert nlu.closed
    assert bot.http.closed


async def test_late_replies_are_kept_then_pushed_with_the_record_forgotten(tmp_path: Path) -> None:
    from bot.core.inbound import Inbound, InboundKind
    from handlers.late_inbound import LateReplies

    bot = BotApp(settings_for(tmp_path), nlu=ClosableNLU(), gateway=NoGateway())
    await bot.start()
    kicks: list[Any] = []
    bot.services.kick_delivery = lambda: kicks.append(1)
    late = LateReplies(bot.services)
    inbound = Inbound("oLate0000000001", InboundKind.TEXT, created_at=1, msg_id="88", text="路灯")
    try:
        await late.keep(inbound)
        async with bot.services.uow() as uow:
            [kept] = await uow.late_inbound.due(bot.clock.now() + timedelta(minutes=1), 10)
        await late.answered(inbound, "稍等的回复")
        async with bot.services.uow() as uow:
            [message] = await uow.outbox.list()
            left = await uow.late_inbound.due(bot.clock.now() + timedelta(minutes=1), 10)
    finally:
        await bot.stop()
    assert kept.inbound == inbound and left == []
    assert (message.recipient_openid, message.text) == ("oLate0000000001", "稍等的回复")
    assert kicks == [1]