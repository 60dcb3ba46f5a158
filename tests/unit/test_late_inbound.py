"""The replay of messages kept past the reply deadline (handlers/late_inbound.py), on memory stores."""
from __future__ import annotations

from fakes import FixedClock, make_services, outbox

from bot.core import keys
from bot.core.inbound import FIRST_DELIVERY, Inbound, InboundKind
from bot.core.ports import LockTimeout
from handlers.late_inbound import MAX_ATTEMPTS, LateReplies, replay_due


def text(openid: str, msg_id: int, body: str) -> Inbound:
    return Inbound(openid, InboundKind.TEXT, created_at=msg_id, msg_id=str(msg_id), text=body)


class Handler:
    def __init__(self, fail: int = 0) -> None:
        self.fail = fail  # the first `fail` handlings raise
        self.seen: list[tuple[str, bool]] = []

    async def __call__(self, inbound: Inbound) -> str | None:
        self.seen.append((inbound.text, FIRST_DELIVERY.get()))
        if len(self.seen) <= self.fail:
            raise LockTimeout("lock:user:o…")
        return f"收到：{inbound.text}"


async def kept(services) -> list[str]:
    async with services.uow() as uow:
        return [e.inbound.text for e in await uow.late_inbound.due(services.clock.now().replace(year=2100), 100)]


async def test_nothing_is_replayed_before_its_time_then_each_user_in_order() -> None:
    clock = FixedClock()
    services = make_services(clock)
    late = LateReplies(services)
    for inbound in (text("oA", 1, "第一句"), text("oB", 2, "别人的"), text("oA", 3, "第二句")):
        await late.keep(inbound)
    handler = Handler()
    assert await replay_due(services, handler) == 0  # its own handler may still answer
    clock.advance(seconds=services.settings.late_retry_after)
    assert await replay_due(services, handler) == 3
    assert [t for t, _ in handler.seen if t != "别人的"] == ["第一句", "第二句"]
    assert all(first is False for _, first in handler.seen)  # a replay looks for its exactly-once record
    assert sorted(m.text for m in await outbox(services)) == ["收到：别人的", "收到：第一句", "收到：第二句"]
    assert await kept(services) == []


async def test_a_message_still_being_handled_is_left_to_its_handler() -> None:
    clock = FixedClock()
    services = make_services(clock)
    inbound = text("oA", 1, "慢")
    await LateReplies(services).keep(inbound)
    await services.kv.set(keys.DEDUPE_PREFIX + inbound.dedupe_key, keys.DEDUPE_PENDING, 60)
    clock.advance(seconds=services.settings.late_retry_after)
    handler = Handler()
    assert await replay_due(services, handler) == 1
    assert handler.seen == [] and await kept(services) == ["慢"]


async def test_failures_wait_longer_each_time_then_the_citizen_is_asked_to_send_it_again() -> None:
    clock = FixedClock()
    services = make_services(clock)
    await LateReplies(services).keep(text("oA", 1, "村口的路灯坏了一个星期了，晚上一片漆黑，老人出门很不方便"))
    handler = Handler(fail=MAX_ATTEMPTS)
    wait = services.settings.late_retry_after
    for attempt in range(1, MAX_ATTEMPTS + 1):
        clock.advance(seconds=wait * attempt)
        assert await replay_due(services, handler) == 1
        assert await replay_due(services, handler) == 0  # claimed: the next try is later
    assert len(handler.seen) == MAX_ATTEMPTS
    [message] = await outbox(services)
    assert message.recipient_openid == "oA"
    assert message.text == services.texts.get("late_message_failed", excerpt="村口的路灯坏了一个星期了，晚上一片漆黑，…")
    assert await kept(services) == []
