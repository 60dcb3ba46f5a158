"""Outbox delivery under WeChat's rules: the 48 h window and its quota, the short window after a
follow/scan/click, template fallback, holding, releasing, retries with back-off, failure."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.core import keys
from bot.core.outbound import OutboxMessage
from bot.core.people import Citizen
from fakes import (
    CITIZEN,
    CITIZEN_2,
    WANG_OPENID,
    FixedClock,
    RecordingGateway,
    api_error,
    draft,
    make_services,
    outbox,
    seed,
)
from handlers.delivery import (
    CS_QUOTA,
    MAX_ATTEMPTS,
    DeliveryWorker,
    deliver_due,
    record_inbound,
    window_state,
    retry_delay,
)
from handlers.services import Services
from handlers.tickets import submit_report


async def add(services: Services, text: str = "你好", *, to: str = CITIZEN, template_key: str = "status") -> None:
    async with services.uow() as uow:
        await uow.outbox.add(OutboxMessage(recipient_openid=to, text=text, template_key=template_key,
                                           template_data={"thing3": text[:20]}, created_at=services.clock.now()))
        await uow.commit()


async def statuses(services: Services) -> list[str]:
    return [m.status for m in await outbox(services)]


async def sent_in_window(services: Services, openid: str = CITIZEN) -> int | None:
    """Customer-service messages sent in the user's open 48 h window; None when it is shut."""
    state = await window_state(services, openid)
    return None if state is None else state[1]


# --- window, template, held -------------------------------------------------------------------------
async def test_inside_the_window_a_customer_service_message_goes() -> None:
    services, gateway = make_services(templates=True), RecordingGateway()
    await record_inbound(services, CITIZEN)
    await add(services, "您的诉求已受理")

    assert await deliver_due(services, gateway) == 1

    assert [(s.channel, s.openid, s.text) for s in gateway.sent] == [("customer_service", CITIZEN, "您的诉求已受理")]
    (message,) = await outbox(services)
    assert (message.status, message.channel, message.attempts) == ("sent", "customer_service", 1)
    assert message.sent_at == services.clock.now()
    assert await sent_in_window(services) == 1
    assert await deliver_due(services, gateway) == 0  # sent once only


async def test_quota_of_five_then_template() -> None:
    services, gateway = make_services(templates=True), RecordingGateway()
    await record_inbound(services, CITIZEN)
    for i in range(CS_QUOTA + 2):
        await add(services, f"第{i}条")

    assert await deliver_due(services, gateway) == CS_QUOTA + 2
    assert [s.channel for s in gateway.sent] == ["customer_service"] * CS_QUOTA + ["template"] * 2
    assert gateway.sent[-1].template_id == "TPL-STATUS" and gateway.sent[-1].data == {"thing3": "第6条"}

    # the citizen writes again: the quota starts over
    await record_inbound(services, CITIZEN)
    assert await sent_in_window(services) == 0
    await add(services, "新消息")
    await deliver_due(services, gateway)
    assert gateway.sent[-1].channel == "customer_service"


async def test_quota_used_up_and_no_template_holds() -> None:
    services, gateway = make_services(), RecordingGateway()
    await record_inbound(services, CITIZEN)
    for i in range(CS_QUOTA + 1):
        await add(services, f"第{i}条")
    assert await deliver_due(services, gateway) == CS_QUOTA
    assert await statuses(services) == ["sent"] * CS_QUOTA + ["held"]


class SlowGateway(RecordingGateway):
    """WeChat taking its time: each send waits a little, so two passes overlap."""

    async def send_text(self, openid: str, text: str) -> None:
        await asyncio.sleep(0.02)
        await super().send_text(openid, text)


async def test_two_passes_at_once_never_send_one_user_more_than_the_window_allows() -> None:
    services, gateway = make_services(), SlowGateway()
    await record_inbound(services, CITIZEN)
    for i in range(4):
        await add(services, f"第{i}条")
    first = asyncio.create_task(deliver_due(services, gateway))  # claims the four
    await asyncio.sleep(0.005)
    for i in range(4, 7):
        await add(services, f"第{i}条")
    second = asyncio.create_task(deliver_due(services, gateway))  # claims the three meanwhile
    await asyncio.gather(first, second)
    await deliver_due(services, gateway)  # what the second pass left for later
    texts = [s.text for s in gateway.sent]
    assert texts == [f"第{i}条" for i in range(CS_QUOTA)]  # five, in order, not seven
    assert await statuses(services) == ["sent"] * CS_QUOTA + ["held"] * 2


async def test_after_48_hours_the_template_is_used() -> None:
    clock = FixedClock()
    services, gateway = make_services(clock, templates=True), RecordingGateway()
    await record_inbound(services, CITIZEN)
    clock.advance(hours=47, minutes=59)
    await add(services, "还在窗口内")
    await deliver_due(services, gateway)
    clock.advance(minutes=1)  # exactly 48 h after the citizen's message
    await add(services, "窗口外")
    await deliver_due(services, gateway)
    assert [s.channel for s in gateway.sent] == ["customer_service", "template"]


async def test_deputy_assignment_uses_its_own_template() -> None:
    services, gateway = make_services(templates=True), RecordingGateway()
    await seed(services)
    await submit_report(services, draft())  # nobody has written: no window for anyone
    await deliver_due(services, gateway)
    by_openid = {s.openid: s for s in gateway.sent}
    assert by_openid[WANG_OPENID].template_id == "TPL-ASSIGN"
    assert by_openid[WANG_OPENID].data["thing2"] == "城乡建设"
    assert CITIZEN not in by_openid  # told in the reply to their 是


async def test_no_window_no_template_holds_until_the_user_writes() -> None:
    clock = FixedClock()
    services, gateway = make_services(clock), RecordingGateway()
    await add(services, "第一条")
    await add(services, "第二条")

    assert await deliver_due(services, gateway) == 0
    held = await outbox(services)
    assert [m.status for m in held] == ["held", "pending"]  # the second waits behind the first
    assert "no template" in held[0].last_error
    assert gateway.calls == []
    assert await deliver_due(services, gateway) == 0
    assert await statuses(services) == ["held", "held"]

    clock.advance(days=3)
    await record_inbound(services, CITIZEN)  # the citizen writes again
    assert await statuses(services) == ["pending", "pending"]
    assert services.kick_delivery.count >= 1  # type: ignore[attr-defined]
    assert await deliver_due(services, gateway) == 2
    assert [s.text for s in gateway.sent] == ["第一条", "第二条"]  # in order


async def test_message_without_template_key_is_held_outside_the_window() -> None:
    services, gateway = make_services(templates=True), RecordingGateway()
    await add(services, "迟到的回复", template_key="")
    await deliver_due(services, gateway)
    assert await statuses(services) == ["held"]


async def test_unsubscribed_user_is_held_not_sent() -> None:
    services, gateway = make_services(templates=True), RecordingGateway()
    await record_inbound(services, CITIZEN)
    async with services.uow() as uow:
        await uow.citizens.save(Citizen(CITIZEN, subscribed=False))
        await uow.commit()
    await add(services)
    await deliver_due(services, gateway)
    assert await statuses(services) == ["held"] and gateway.calls == []


# --- the short window after a follow, scan or click ---------------------------------------------
async def test_follow_opens_three_messages_within_a_minute() -> None:
    clock = FixedClock()
    services, gateway = make_services(clock), RecordingGateway()
    await record_inbound(services, CITIZEN, event="subscribe")
    for i in range(4):
        await add(services, f"第{i}条")
    assert await deliver_due(services, gateway) == 3
    assert await statuses(services) == ["sent", "sent", "sent", "held"]


async def test_the_short_window_closes_after_a_minute() -> None:
    clock = FixedClock()
    services, gateway = make_services(clock, templates=True), RecordingGateway()
    await record_inbound(services, CITIZEN, event="SCAN")
    await add(services, "一")
    await deliver_due(services, gateway)
    clock.advance(seconds=60)
    await add(services, "二")
    await deliver_due(services, gateway)
    assert [s.channel for s in gateway.sent] == ["customer_service", "template"]


async def test_other_events_open_no_window() -> None:
    services, gateway = make_services(), RecordingGateway()
    await record_inbound(services, CITIZEN, event="view")
    await record_inbound(services, CITIZEN, event="location")
    await add(services)
    await deliver_due(services, gateway)
    assert await statuses(services) == ["held"]


async def test_a_message_supersedes_the_short_window() -> None:
    services, gateway = make_services(), RecordingGateway()
    await record_inbound(services, CITIZEN, event="click")
    await record_inbound(services, CITIZEN)
    for i in range(5):
        await add(services, f"第{i}条")
    assert await deliver_due(services, gateway) == 5


# --- errors -----------------------------------------------------------------------------------------
async def test_temporary_errors_are_retried_with_back_off() -> None:
    clock = FixedClock()
    services, gateway = make_services(clock), RecordingGateway()
    await record_inbound(services, CITIZEN)
    await add(services)
    gateway.fail("text", api_error(-1), OSError("connection reset"))

    assert await deliver_due(services, gateway) == 0
    (message,) = await outbox(services)
    assert (message.status, message.attempts) == ("pending", 1)
    assert message.next_attempt_at == clock.now() + retry_delay(1)
    assert "-1" in message.last_error

    clock.advance(seconds=retry_delay(1).total_seconds() - 1)
    assert await deliver_due(services, gateway) == 0
    assert gateway.calls == ["text"]  # not due yet: not tried

    clock.advance(seconds=1)
    assert await deliver_due(services, gateway) == 0  # the network error
    (message,) = await outbox(services)
    assert message.attempts == 2 and "OSError" in message.last_error
    assert message.next_attempt_at == clock.now() + retry_delay(2)

    clock.advance(seconds=retry_delay(2).total_seconds())
    assert await deliver_due(services, gateway) == 1
    (message,) = await outbox(services)
    assert (message.status, message.attempts, message.last_error) == ("sent", 3, "")


def test_back_off_doubles_and_is_capped() -> None:
    delays = [retry_delay(n) for n in range(1, 10)]
    assert delays[:4] == [timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    assert max(delays) == timedelta(hours=1)


async def test_failed_after_max_attempts_and_visible() -> None:
    clock = FixedClock()
    services, gateway = make_services(clock), RecordingGateway()
    await record_inbound(services, CITIZEN)
    await add(services)
    gateway.fail("text", *[api_error(40001) for _ in range(MAX_ATTEMPTS)])
    for _ in range(MAX_ATTEMPTS):
        await deliver_due(services, gateway)
        clock.advance(hours=1)
    (message,) = await outbox(services)
    assert (message.status, message.attempts) == ("failed", MAX_ATTEMPTS)
    assert "40001" in message.last_error
    assert await deliver_due(services, gateway) == 0
    async with services.uow() as uow:
        assert [m.id for m in await uow.outbox.list()] == [message.id]  # what `zhitongche outbox` shows


async def test_window_closed_error_falls_back_to_template_at_once() -> None:
    services, gateway = make_services(templates=True), RecordingGateway()
    await record_inbound(services, CITIZEN)
    await add(services, "一")
    await add(services, "二")
    gateway.fail("text", api_error(45015))

    assert await deliver_due(services, gateway) == 2
    # WeChat said the window is shut: the second message does not try customer service again
    assert gateway.calls == ["text", "template", "template"]
    assert [m.channel for m in await outbox(services)] == ["template", "template"]
    assert await sent_in_window(services) is None  # shut until the citizen writes again


async def test_quota_error_without_template_holds() -> None:
    services, gateway = make_services(), RecordingGateway()
    await record_inbound(services, CITIZEN)
    await add(services)
    gateway.fail("text", api_error(45047))
    assert await deliver_due(services, gateway) == 0
    (message,) = await outbox(services)
    assert (message.status, message.attempts) == ("held", 0)


async def test_a_message_held_right_after_the_user_wrote_is_released_by_their_next_message() -> None:
    services, gateway = make_services(), RecordingGateway()
    await record_inbound(services, CITIZEN)
    await add(services)
    gateway.fail("text", api_error(45047))
    await deliver_due(services, gateway)
    assert await statuses(services) == ["held"]

    await record_inbound(services, CITIZEN)  # seconds later: still recorded, the hold is lifted
    assert await statuses(services) == ["pending"]


async def test_a_message_costs_no_database_work_when_nothing_is_held() -> None:
    services = make_services()
    opened = []
    real_uow = services.uow

    def counting_uow():
        opened.append(1)
        return real_uow()

    services.uow = counting_uow
    await record_inbound(services, CITIZEN)
    await record_inbound(services, CITIZEN)
    assert opened == [] and await sent_in_window(services) == 0


async def test_a_lost_held_mark_is_made_up_for_by_the_next_delivery_run() -> None:
    services, gateway = make_services(), RecordingGateway()
    await add(services)
    await deliver_due(services, gateway)
    assert await statuses(services) == ["held"]
    await services.kv.delete(keys.held_mark(CITIZEN))  # e.g. Redis restarted without persistence

    await record_inbound(services, CITIZEN)
    assert await statuses(services) == ["held"]
    worker = DeliveryWorker(services, gateway)
    assert await worker.run_once() == 1
    assert [s.channel for s in gateway.sent] == ["customer_service"]


async def test_the_held_sweep_runs_once_per_interval_not_on_every_kick() -> None:
    services, gateway = make_services(), RecordingGateway()
    worker = DeliveryWorker(services, gateway, interval=3600)
    assert await worker.run_once() == 0  # the first run sweeps (nothing held yet)
    await add(services)
    await deliver_due(services, gateway)
    await services.kv.delete(keys.held_mark(CITIZEN))  # a lost mark: only the sweep can find it
    await record_inbound(services, CITIZEN)

    assert await worker.run_once() == 0  # a kick within the interval: no sweep
    assert await statuses(services) == ["held"]
    worker.interval = 0  # the interval has passed
    assert await worker.run_once() == 1
    assert await statuses(services) == ["sent"]


async def test_user_who_left_is_held() -> None:
    services, gateway = make_services(templates=True), RecordingGateway()
    await add(services)
    gateway.fail("template", api_error(43004))
    await deliver_due(services, gateway)
    assert await statuses(services) == ["held"]


async def test_template_errors_are_retried() -> None:
    services, gateway = make_services(templates=True), RecordingGateway()
    await add(services)
    gateway.fail("template", api_error(-1))
    await deliver_due(services, gateway)
    (message,) = await outbox(services)
    assert (message.status, message.attempts) == ("pending", 1)


async def test_a_failing_recipient_does_not_block_others() -> None:
    services, gateway = make_services(), RecordingGateway()
    await record_inbound(services, CITIZEN)
    await record_inbound(services, CITIZEN_2)
    await add(services, "给一号", to=CITIZEN)
    await add(services, "一号的第二条", to=CITIZEN)
    await add(services, "给二号", to=CITIZEN_2)
    gateway.fail("text", api_error(-1))
    assert await deliver_due(services, gateway) == 1
    assert [(s.openid, s.text) for s in gateway.sent] == [(CITIZEN_2, "给二号")]
    # the first citizen's second message was not tried before the first one
    assert [m.attempts for m in await outbox(services)] == [1, 0, 1]


async def test_limit_bounds_one_pass() -> None:
    services, gateway = make_services(), RecordingGateway()
    await record_inbound(services, CITIZEN)
    for i in range(3):
        await add(services, f"第{i}条")
    assert await deliver_due(services, gateway, limit=2) == 2
    assert await deliver_due(services, gateway, limit=2) == 1


# --- the worker ---------------------------------------------------------------------------------------
async def wait_until(condition, tries: int = 500) -> None:  # type: ignore[no-untyped-def]
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_worker_delivers_when_kicked_and_stops_cleanly() -> None:
    services, gateway = make_services(), RecordingGateway()
    await seed(services)
    await record_inbound(services, WANG_OPENID)
    worker = DeliveryWorker(services, gateway, interval=3600)  # only kicks wake it
    services.kick_delivery = worker.kick
    worker.start()
    try:
        await submit_report(services, draft())  # kicks delivery after its commit
        await wait_until(lambda: any(s.openid == WANG_OPENID for s in gateway.sent))
    finally:
        await worker.stop()
    assert "新工单 #1001" in gateway.to(WANG_OPENID)[0].text
    await worker.stop()  # stopping twice is harmless


async def test_worker_survives_a_broken_pass() -> None:
    services, gateway = make_services(), RecordingGateway()
    await record_inbound(services, CITIZEN)
    worker = DeliveryWorker(services, gateway, interval=3600)

    broken = {"left": 1}
    real_uow = services.uow

    def flaky_uow():  # type: ignore[no-untyped-def]
        if broken["left"]:
            broken["left"] -= 1
            raise RuntimeError("database down")
        return real_uow()

    services.uow = flaky_uow  # type: ignore[assignment]
    worker.start()
    try:
        await wait_until(lambda: broken["left"] == 0)
        services.uow = real_uow
        await add(services, "恢复后")
        worker.kick()
        await wait_until(lambda: bool(gateway.sent))
    finally:
        await worker.stop()
    assert gateway.sent[0].text == "恢复后"


async def test_two_workers_at_once_send_each_message_once() -> None:
    """Passes in two workers overlap (a slow WeChat API): the claim keeps them apart."""
    services = make_services()
    for openid in (CITIZEN, CITIZEN_2):
        await record_inbound(services, openid)
        for i in range(3):
            await add(services, f"{openid}-{i}", to=openid)

    class SlowGateway(RecordingGateway):
        async def send_text(self, openid: str, text: str) -> None:
            await asyncio.sleep(0.01)  # the other worker runs meanwhile
            await super().send_text(openid, text)

    gateway = SlowGateway()
    first, second = await asyncio.gather(deliver_due(services, gateway), deliver_due(services, gateway))
    assert first + second == 6
    texts = [s.text for s in gateway.sent]
    assert sorted(texts) == sorted(set(texts)) and len(texts) == 6


async def test_a_deferred_recipients_later_messages_are_due_again_next_pass() -> None:
    services, gateway = make_services(), RecordingGateway()
    await record_inbound(services, CITIZEN)
    await add(services, "一")
    await add(services, "二")
    gateway.fail("text", api_error(-1))  # the first one fails: the second must not overtake it
    assert await deliver_due(services, gateway) == 0
    second = (await outbox(services))[1]
    assert second.status == "pending" and second.next_attempt_at is None  # claim released


# --- claims, concurrency, failures that reach a person ------------------------------------------------
class HangingGateway(RecordingGateway):
    """Sends to `hung` never return (until cancelled), like a WeChat call that hangs."""

    def __init__(self, hung: str) -> None:
        super().__init__()
        self.hung = hung
        self.started = asyncio.Event()

    async def send_text(self, openid: str, text: str) -> None:
        if openid == self.hung:
            self.started.set()
            await asyncio.Event().wait()
        await super().send_text(openid, text)


async def test_a_hung_call_holds_up_only_its_own_recipient_and_order_is_kept() -> None:
    services, gateway = make_services(), HangingGateway(hung=CITIZEN)
    for openid in (CITIZEN, CITIZEN_2):
        await record_inbound(services, openid)
    await add(services, "甲一", to=CITIZEN)
    for text in ("乙一", "乙二", "乙三"):
        await add(services, text, to=CITIZEN_2)
    task = asyncio.get_running_loop().create_task(deliver_due(services, gateway))
    await gateway.started.wait()
    for _ in range(50):  # the other recipient's messages go meanwhile, in order
        if len(gateway.to(CITIZEN_2)) == 3:
            break
        await asyncio.sleep(0.01)
    assert [s.text for s in gateway.to(CITIZEN_2)] == ["乙一", "乙二", "乙三"]
    task.cancel()


async def test_a_claim_is_short_and_renewed_while_sending(monkeypatch) -> None:
    from handlers import claims

    monkeypatch.setattr(claims, "CLAIM_LEASE", timedelta(seconds=0.3))
    services, gateway = make_services(), HangingGateway(hung=CITIZEN)
    await record_inbound(services, CITIZEN)
    await add(services, "甲一")
    task = asyncio.get_running_loop().create_task(deliver_due(services, gateway))
    await gateway.started.wait()
    (claimed,) = await outbox(services)
    assert claimed.next_attempt_at == services.clock.now() + timedelta(seconds=0.3)  # not 30 s + 15 s each
    services.clock.advance(seconds=1)  # the renewal moves the lease along with time
    await asyncio.sleep(0.25)
    (renewed,) = await outbox(services)
    assert renewed.next_attempt_at == services.clock.now() + timedelta(seconds=0.3)
    task.cancel()


async def test_a_push_failed_for_good_is_recorded_and_the_next_on_duty_deputy_is_told_once() -> None:
    from handlers.deputies import handle_deputy_message

    clock = FixedClock()
    services, gateway = make_services(clock), RecordingGateway()
    await seed(services)
    ticket = await submit_report(services, draft())
    pushes = await outbox(services)  # the deputy's new-ticket notice (the citizen got the reply)
    assert pushes and all(m.ticket_number == ticket.number for m in pushes)
    await record_inbound(services, CITIZEN)
    await record_inbound(services, WANG_OPENID)
    gateway.fail("text", *[api_error(40003) for _ in range(MAX_ATTEMPTS * 3)])
    for _ in range(MAX_ATTEMPTS):
        await deliver_due(services, gateway)
        clock.advance(hours=1)
        for openid in (CITIZEN, WANG_OPENID):
            await record_inbound(services, openid)
    clock.set(clock.now().replace(hour=10))  # back inside Monday's 09–12 shift
    failed = [m for m in await outbox(services) if m.status == "failed"]
    assert failed
    async with services.uow() as uow:
        failures = await uow.outbox.failures(ticket.station_code)
    assert {f.message_id for f in failures} == {m.id for m in failed}
    assert {f.ticket_number for f in failures} == {ticket.number}

    async with services.uow() as uow:
        deputy = await uow.deputies.get("D002")
    reply = await handle_deputy_message(services, deputy, "我的工单")
    assert reply and f"#{ticket.number}" in reply and str(len(failed)) in reply
    assert services.texts.get("deputy_failed_pushes", count=len(failed), tickets=f"#{ticket.number}") in reply
    again = await handle_deputy_message(services, deputy, "我的工单")
    assert "⚠" not in (again or "")  # told once
