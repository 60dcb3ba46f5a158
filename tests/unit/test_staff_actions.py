"""Staff actions on tickets (handlers/staff_actions.py) on the memory stores: the same Ticket
methods and events as the chat, so the same pushes; scope; the audit log; stale forms refused."""
from __future__ import annotations

import pytest
from fakes import CITIZEN, LI_OPENID, WANG_OPENID, ZHOU_OPENID, draft, get_ticket, make_services, outbox, seed

from bot.core.ports import ConcurrentUpdate
from bot.core.staff import ActionRefused, NotInScope, StaffAccount, StaffRole
from bot.core.tickets import VISITOR, TicketStatus, TimelineKind
from handlers import staff_actions
from handlers.citizens import awaiting_rating
from handlers.tickets import submit_report

DISTRICT = StaffAccount("qu", StaffRole.DISTRICT, "x", name="区人大")
LILI = StaffAccount("lili", StaffRole.TOWN, "x", town="黎里镇")
SHENGZE = StaffAccount("shengze", StaffRole.TOWN, "x", town="盛泽镇")
DONGCUN = StaffAccount("dongcun", StaffRole.STATION, "x", town="黎里镇", station="LL-DC")


async def _setup():
    services = make_services()
    await seed(services)
    ticket = await submit_report(services, draft())  # 东村, Monday 10:00: D001 on duty
    assert ticket.deputy_code == "D001"
    return services, ticket


async def _audit(services):
    async with services.uow() as uow:
        return list((await uow.audit.page(0, 50)).entries)


def _texts_to(messages, openid):
    return [m.text for m in messages if m.recipient_openid == openid]


async def test_visitor_report_is_filed_and_assigned_like_a_chat_report() -> None:
    services = make_services()
    await seed(services)
    ticket = await staff_actions.file_for_visitor(
        services, LILI, summary="东村桥头的护栏断了", details="老人打电话来说的", place="黎里镇东村",
        category="交通运输", phone="139 1234 5678", phone_consent=True)

    stored = await get_ticket(services, ticket.number)
    assert (stored.station_code, stored.deputy_code, stored.status) == ("LL-DC", "D001", TicketStatus.ASSIGNED)
    assert stored.citizen_openid == VISITOR and stored.from_visitor
    assert (stored.phone, stored.share_contact) == ("13912345678", True)
    assert stored.timeline[0].actor == "lili"  # who took it down
    messages = await outbox(services)
    assert [m.recipient_openid for m in messages] == [WANG_OPENID]  # nobody to push to for the visitor
    assert "13912345678" in messages[0].text
    [entry] = await _audit(services)
    assert (entry.actor, entry.action, entry.target) == ("lili", "visitor_filed", f"ticket:{ticket.number}")
    assert "13912345678" not in entry.after  # no phone numbers in the log


async def test_visitor_phone_without_consent_is_kept_but_not_shown_to_the_deputy() -> None:
    services = make_services()
    await seed(services)
    ticket = await staff_actions.file_for_visitor(
        services, DONGCUN, summary="路灯不亮", details="", place="盛泽镇", category="城乡建设",
        phone="0512-63001234", phone_consent=False)
    assert ticket.station_code == "LL-DC"  # a station account files at its own station
    stored = await get_ticket(services, ticket.number)
    assert (stored.phone, stored.share_contact) == ("0512-63001234", False)
    assert all("63001234" not in m.text for m in await outbox(services))


@pytest.mark.parametrize(("staff", "fields", "field", "key"), [
    (LILI, {"summary": " "}, "summary", "action_field_empty"),
    (LILI, {"place": ""}, "place", "action_field_empty"),
    (LILI, {"category": "天气"}, "category", "action_category_unknown"),
    (LILI, {"phone": "12345"}, "phone", "action_phone_bad"),
    (LILI, {"details": "字" * 2001}, "details", "action_field_long"),
    (LILI, {"station_code": "SZ-HOME"}, "station", "action_station_unknown"),  # another town's
    (LILI, {"place": "盛泽镇"}, "station", "action_station_choose"),  # routed out of the town
    (DISTRICT, {"reception_id": 99}, "reception_id", "action_reception_unknown"),
])
async def test_visitor_report_refusals_name_the_field(staff, fields, field, key) -> None:
    services = make_services()
    await seed(services)
    values = dict(summary="护栏断了", details="", place="黎里镇东村", category="交通运输") | fields
    with pytest.raises(ActionRefused) as refused:
        await staff_actions.file_for_visitor(services, staff, **values)
    assert (refused.value.field, refused.value.key) == (field, key)
    assert await outbox(services) == []
    assert await _audit(services) == []


async def test_reassign_tells_citizen_new_deputy_and_the_one_it_was_taken_from() -> None:
    services, ticket = await _setup()
    before = len(await outbox(services))
    done = await staff_actions.assign(services, LILI, ticket.number, "D002", revision=ticket.revision)

    assert (done.deputy_code, done.status) == ("D002", TicketStatus.ASSIGNED)
    new = (await outbox(services))[before:]
    assert any("李建国" in text for text in _texts_to(new, CITIZEN))
    assert any(f"新工单 #{ticket.number}" in text for text in _texts_to(new, LI_OPENID))
    assert any("改派给李建国代表" in text for text in _texts_to(new, WANG_OPENID))
    [entry] = await _audit(services)
    assert (entry.actor, entry.action, entry.before, entry.after) == ("lili", "ticket_assigned", "LL-DC D001",
                                                                      "LL-DC D002")


async def test_town_staff_assign_only_within_the_station_district_anywhere() -> None:
    services, ticket = await _setup()
    with pytest.raises(ActionRefused) as refused:
        await staff_actions.assign(services, LILI, ticket.number, "D003")  # 黎里 home, not 东村
    assert refused.value.field == "deputy_code"
    with pytest.raises(ActionRefused):
        await staff_actions.assign(services, LILI, ticket.number, "D999")
    with pytest.raises(ActionRefused) as same:
        await staff_actions.assign(services, LILI, ticket.number, "D001")
    assert same.value.key == "assign_same_deputy"

    moved = await staff_actions.assign(services, DISTRICT, ticket.number, "D003")
    assert (moved.station_code, moved.deputy_code) == ("LL-HOME", "D003")
    assert any(f"#{ticket.number}" in t for t in _texts_to(await outbox(services), ZHOU_OPENID))


async def test_out_of_scope_is_the_same_as_missing() -> None:
    services, ticket = await _setup()
    for staff, number in ((SHENGZE, ticket.number), (LILI, 9999)):
        with pytest.raises(NotInScope):
            await staff_actions.assign(services, staff, number, "D002")
        with pytest.raises(NotInScope):
            await staff_actions.message_citizen(services, staff, number, "你好")
        with pytest.raises(NotInScope):
            await staff_actions.close_as_duplicate(services, staff, number, "1001")
    assert (await get_ticket(services, ticket.number)).deputy_code == "D001"
    assert await _audit(services) == []


async def test_a_form_shown_before_a_change_is_refused_and_changes_nothing() -> None:
    services, ticket = await _setup()
    shown = ticket.revision
    await staff_actions.message_citizen(services, LILI, ticket.number, "我们已经联系供电所", revision=shown)
    count = len(await outbox(services))
    with pytest.raises(ConcurrentUpdate):
        await staff_actions.assign(services, LILI, ticket.number, "D002", revision=shown)
    stored = await get_ticket(services, ticket.number)
    assert stored.deputy_code == "D001"
    assert len(await outbox(services)) == count
    assert [e.action for e in await _audit(services)] == ["station_message"]


async def test_message_to_citizen_is_on_the_timeline_and_pushed() -> None:
    services, ticket = await _setup()
    await staff_actions.message_citizen(services, DONGCUN, ticket.number, "  明天上午有人去修  ")
    stored = await get_ticket(services, ticket.number)
    last = stored.timeline[-1]
    assert (last.kind, last.actor, last.text) == (TimelineKind.STATION_MESSAGE, "dongcun", "明天上午有人去修")
    [text] = [t for t in _texts_to(await outbox(services), CITIZEN) if "留言" in t]
    assert "东村代表联络站" in text and "明天上午有人去修" in text
    with pytest.raises(ActionRefused) as long:
        await staff_actions.message_citizen(services, DONGCUN, ticket.number, "长" * 700)
    assert (long.value.field, long.value.key) == ("text", "action_text_long")
    with pytest.raises(ActionRefused):
        await staff_actions.message_citizen(services, DONGCUN, ticket.number, " ")


async def test_no_message_to_a_visitor_without_wechat() -> None:
    services = make_services()
    await seed(services)
    ticket = await staff_actions.file_for_visitor(services, DONGCUN, summary="护栏断了", details="",
                                                  place="东村", category="交通运输")
    with pytest.raises(ActionRefused) as refused:
        await staff_actions.message_citizen(services, DONGCUN, ticket.number, "你好")
    assert refused.value.key == "station_message_no_wechat"


async def test_close_as_duplicate_tells_the_citizen_which_number() -> None:
    services, first = await _setup()
    second = await submit_report(services, draft(summary="东村路灯还是不亮"))
    before = len(await outbox(services))
    closed = await staff_actions.close_as_duplicate(services, LILI, second.number, f"#{first.number}",
                                                    revision=second.revision)
    assert closed.status is TicketStatus.CLOSED and not closed.status.is_open
    new = (await outbox(services))[before:]
    [to_citizen] = _texts_to(new, CITIZEN)
    assert f"#{first.number}" in to_citizen and f"#{second.number}" in to_citizen
    deputy_openid = WANG_OPENID if second.deputy_code == "D001" else LI_OPENID
    assert any("合并关闭" in t for t in _texts_to(new, deputy_openid))
    assert await awaiting_rating(services, CITIZEN) is None  # a duplicate is never rated
    [entry] = await _audit(services)
    assert (entry.action, entry.before, entry.after) == ("ticket_duplicate", "assigned", f"#{first.number}")

    with pytest.raises(ActionRefused) as closed_again:
        await staff_actions.close_as_duplicate(services, LILI, first.number, second.number)
    assert closed_again.value.key == "action_original_closed"
    with pytest.raises(ActionRefused) as itself:
        await staff_actions.close_as_duplicate(services, LILI, first.number, first.number)
    assert itself.value.key == "duplicate_of_itself"


async def test_duplicate_of_a_ticket_outside_the_scope_is_refused_like_a_missing_one() -> None:
    services, first = await _setup()
    other = await submit_report(services, draft(place="盛泽镇", summary="盛泽的事"))
    for original in (other.number, 9999, "abc", "¹", "99999999999"):  # "¹".isdigit() is true
        with pytest.raises(ActionRefused) as refused:
            await staff_actions.close_as_duplicate(services, LILI, first.number, original)
        assert refused.value.field == "original"
    assert (await get_ticket(services, first.number)).status is TicketStatus.ASSIGNED


def test_ids_are_ascii_digits_within_a_database_integer() -> None:
    assert [staff_actions.parse_id(t) for t in ("1001", " 7 ", "¹", "", "0", "2147483648", "1e3")] == [
        1001, 7, None, None, None, None, None]
