"""Filing a report: routing, assignment, round robin, queueing, the pushes it records and what the
citizen is told (the reply to their 是: no push repeats it); and the whole loop through a deputy's
replies to the messages the citizen receives."""
from __future__ import annotations

from dataclasses import replace

from bot.core.people import DISTRICT_QUEUE, Citizen
from bot.core.tickets import Attachment, TicketStatus
from fakes import (
    CITIZEN,
    CITIZEN_2,
    DEPUTIES,
    LI_OPENID,
    MONDAY_10,
    WANG_OPENID,
    ZHOU_OPENID,
    FixedClock,
    RecordingGateway,
    draft,
    get_ticket,
    make_services,
    outbox,
    seed,
)
from handlers.citizens import filed_text
from handlers.delivery import deliver_due, record_inbound
from handlers.deputies import handle_deputy_message
from handlers.tickets import file_form, submit_report


async def test_report_goes_to_the_on_duty_deputy_of_the_named_place() -> None:
    services = make_services()
    await seed(services)

    filed = await file_form(services, draft(), "")
    ticket = filed.ticket

    assert ticket.number == 1001
    assert ticket.station_code == "LL-DC"
    assert ticket.status is TicketStatus.ASSIGNED
    assert ticket.deputy_code == "D001"  # D001 and D002 both free: first in order
    stored = await get_ticket(services, ticket.number)
    assert stored.status is TicketStatus.ASSIGNED
    assert [e.kind for e in stored.timeline] == ["filed", "assigned"]
    assert stored.details == "晚上路过很黑"
    assert services.kick_delivery.count == 1  # type: ignore[attr-defined]

    messages = await outbox(services)
    assert [m.recipient_openid for m in messages] == [WANG_OPENID]  # the citizen hears it in the reply
    told = await filed_text(services, filed)
    assert "#1001" in told and "已转给值班代表" in told and "王晓梅" in told and "东村代表联络站" in told
    assert "受理" not in told  # only the deputy accepts
    notice = messages[0]
    assert notice.template_key == "assignment"
    for part in ("#1001", "城乡建设", "黎里镇东村", "村口的路灯坏了一个星期", "晚上路过很黑", "受理 #1001"):
        assert part in notice.text
    assert "139" not in notice.text  # no phone: the citizen gave none
    assert all(m.status == "pending" for m in messages)


async def test_ticket_numbers_are_unique_and_increasing() -> None:
    services = make_services()
    await seed(services)
    numbers = [(await submit_report(services, draft(summary=f"第{i}件"))).number for i in range(4)]
    assert numbers == sorted(set(numbers)) and len(numbers) == 4


async def test_phone_reaches_the_deputy_only_with_consent() -> None:
    services = make_services()
    await seed(services)
    shared = await submit_report(services, draft(phone="13812345678", share_contact=True))
    private = await submit_report(services, draft(phone="13887654321", share_contact=False))

    by_ticket = {m.text.split("#")[1].split("】")[0]: m for m in await outbox(services)
                 if m.recipient_openid in (WANG_OPENID, LI_OPENID)}
    shared_notice = by_ticket[str(shared.number)]
    private_notice = by_ticket[str(private.number)]
    assert "13812345678" in shared_notice.text
    assert "13812345678" in shared_notice.template_data["phone_number6"]
    assert "13887654321" not in private_notice.text
    assert "13887654321" not in str(private_notice.template_data)
    stored = await get_ticket(services, private.number)
    assert stored.phone == "13887654321" and stored.share_contact is False  # kept, not shown


async def test_round_robin_between_equally_busy_deputies_uses_the_kv_state() -> None:
    services = make_services()
    await seed(services)
    picks = [(await submit_report(services, draft())).deputy_code for _ in range(4)]
    assert picks == ["D001", "D002", "D001", "D002"]
    assert await services.kv.get("rr:LL-DC") == "D002"


async def test_the_least_busy_deputy_goes_first() -> None:
    services = make_services()
    await seed(services)
    first = await submit_report(services, draft())
    second = await submit_report(services, draft())
    assert (first.deputy_code, second.deputy_code) == ("D001", "D002")
    # D001 closes theirs: now has fewer open tickets than D002 although round robin says D001's turn
    wang = DEPUTIES[0]
    assert "办结" in (await handle_deputy_message(services, wang, f"办结 #{first.number} 修好了") or "")
    third = await submit_report(services, draft())
    assert third.deputy_code == "D001"


async def test_qr_station_wins_and_a_bound_station_counts_as_qr() -> None:
    services = make_services()
    await seed(services)
    ticket = await submit_report(services, draft(qr_station_code="LL-HOME", place="盛泽镇"))
    assert ticket.station_code == "LL-HOME"

    async with services.uow() as uow:
        await uow.citizens.save(Citizen(CITIZEN_2, station_code="LL-DC"))
        await uow.commit()
    ticket = await submit_report(services, draft(citizen_openid=CITIZEN_2, place="不知道", town=""))
    assert ticket.station_code == "LL-DC"


async def test_nobody_on_duty_queues_the_ticket_and_tells_the_station_staff() -> None:
    services = make_services()  # Monday 10:00: nobody on duty at LL-HOME (D003 works 14–17)
    await seed(services)

    filed = await file_form(services, draft(place="黎里社区", category="其他"), "")
    ticket = filed.ticket

    assert ticket.station_code == "LL-HOME"
    assert ticket.status is TicketStatus.FILED and ticket.deputy_code is None
    messages = await outbox(services)
    told = await filed_text(services, filed)
    assert "#1001" in told and "没有代表值班" in told and "排队" in told and "已转给" not in told
    staff = [m for m in messages if m.recipient_openid == ZHOU_OPENID]  # D003 belongs to LL-HOME
    assert len(staff) == 1 and "待分配工单 #1001" in staff[0].text
    assert len(messages) == 1
    async with services.uow() as uow:
        assert [t.number for t in await uow.tickets.waiting("LL-HOME")] == [1001]


async def test_queue_without_bound_staff_pushes_nothing() -> None:
    services = make_services()
    await seed(services)
    filed = await file_form(services, draft(place="盛泽镇舜湖路", category="其他"), "")
    ticket = filed.ticket  # D004 unbound
    assert ticket.station_code == "SZ-HOME" and ticket.status is TicketStatus.FILED
    assert await outbox(services) == []
    assert "盛泽镇代表之家现在没有代表值班" in await filed_text(services, filed)


async def test_district_queue() -> None:
    services = make_services()
    await seed(services)
    filed = await file_form(services, draft(place="火星", town=""), "")
    ticket = filed.ticket
    assert ticket.station_code == DISTRICT_QUEUE and ticket.status is TicketStatus.FILED
    assert "区人大代表联络总站" in await filed_text(services, filed)


async def test_assignment_to_an_unbound_deputy_is_filed_undeliverable_for_staff() -> None:
    clock = FixedClock(MONDAY_10.replace(day=8))  # Tuesday 10:00: D004 on duty at 盛泽, not bound
    services = make_services(clock)
    await seed(services)
    filed = await file_form(services, draft(place="盛泽镇舜湖路", category="其他"), "")
    ticket = filed.ticket
    assert ticket.deputy_code == "D004"
    (notice,) = await outbox(services)
    assert (notice.recipient_openid, notice.status, notice.last_error) == ("deputy:D004", "failed", "unreachable: not bound")
    async with services.uow() as uow:  # the station's staff see it (console, 我的工单 of the next deputy on duty)
        (failure,) = await uow.outbox.failures("SZ-HOME")
    assert (failure.message_id, failure.ticket_number) == (notice.id, ticket.number)
    reply = await filed_text(services, filed)
    texts = services.texts
    assert "陈卫东" in reply and texts.get("reach_unreachable", who=texts.get("reach_who_named", name="陈卫东")) in reply


async def test_roster_naming_an_unknown_deputy_is_skipped() -> None:
    from fakes import SHIFTS, weekday_shift

    services = make_services()
    await seed(services, shifts=(*SHIFTS, weekday_shift("LL-DC", "D999", 1, "09:00", "12:00")))
    codes = {(await submit_report(services, draft())).deputy_code for _ in range(3)}
    assert codes == {"D001", "D002"}


async def test_attachments_are_filed_with_the_ticket() -> None:
    services = make_services()
    await seed(services)
    photo = Attachment("image", media_id="m1", url="http://x/1.jpg")
    ticket = await submit_report(services, draft(attachments=[photo]))
    assert (await get_ticket(services, ticket.number)).attachments == [photo]


async def test_the_whole_loop_reaches_the_citizen() -> None:
    """submit → assigned → accepted → replied → resolved, every step pushed to the citizen."""
    clock = FixedClock()
    services = make_services(clock)
    gateway = RecordingGateway()
    await seed(services)
    await record_inbound(services, CITIZEN)  # the citizen is chatting: window open
    await record_inbound(services, WANG_OPENID)  # so is the deputy

    ticket = await submit_report(services, draft(phone="13812345678", share_contact=True))
    assert await deliver_due(services, gateway) == 1
    assert gateway.to(CITIZEN) == []  # told in the reply to their 是
    assert "13812345678" in gateway.to(WANG_OPENID)[-1].text

    wang = replace(DEPUTIES[0])
    n = ticket.number
    assert "已受理" in (await handle_deputy_message(services, wang, f"受理 #{n}") or "")
    assert "已经告诉群众" in (await handle_deputy_message(services, wang, f"#{n} 明天上午去现场看看") or "")
    reply = await handle_deputy_message(services, wang, f"办结 #{n} 路灯已经换好了")
    assert reply is not None and "已办结" in reply
    assert await deliver_due(services, gateway) == 3

    texts = [s.text for s in gateway.to(CITIZEN)]
    assert len(texts) == 3
    assert "已经接手" in texts[0]
    assert "明天上午去现场看看" in texts[1]
    assert "路灯已经换好了" in texts[2] and "1 到 5" in texts[2]
    stored = await get_ticket(services, n)
    assert stored.status is TicketStatus.RESOLVED
    assert [e.kind for e in stored.timeline] == ["filed", "assigned", "accepted", "replied", "resolved"]
    async with services.uow() as uow:
        awaiting = await uow.tickets.awaiting_rating(CITIZEN)
    assert awaiting is not None and awaiting.number == n  # the dialogue asks for 满意度 next
