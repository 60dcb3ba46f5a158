"""Notices that tell the truth (issue 8 §2): one route() for delivery and replies, stale held
pushes dropped, template/订阅通知 fields to WeChat's 2023 rules, 43101 handled as not reachable."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from bot.core.outbound import OutboxStatus
from bot.core.reach import Channels, Outcome, Purpose, Recipient, Route, outcome, route, stale_reason
from bot.core.tickets import Ticket, TicketStatus
from bot.core.wechat_fields import fit, fit_all, problems
from bot.settings import Settings
from fakes import CITIZEN, DEPUTIES, LI_OPENID, WANG_OPENID, RecordingGateway, api_error, draft, make_services, outbox, seed
from handlers import channels
from handlers.deputies import handle_deputy_message
from handlers.delivery import deliver_due, record_inbound
from handlers.tickets import submit_report

WANG, LI = DEPUTIES[0], DEPUTIES[1]
TEMPLATE, SUBSCRIBE = Channels(template_id="T"), Channels(subscribe_id="S")


# --- route(): one decision ----------------------------------------------------------------------
@pytest.mark.parametrize(("recipient", "configured", "expected"), [
    (Recipient(""), TEMPLATE, Route.UNREACHABLE),  # no WeChat bound
    (Recipient("o1", following=False, window_open=True), TEMPLATE, Route.UNREACHABLE),
    (Recipient("o1", window_open=True), TEMPLATE, Route.CUSTOM),
    (Recipient("o1"), TEMPLATE, Route.TEMPLATE),
    (Recipient("o1", subscriptions=1), SUBSCRIBE, Route.SUBSCRIBE),
    (Recipient("o1", subscriptions=0), SUBSCRIBE, Route.HELD),  # no subscription left
    (Recipient("o1"), Channels(), Route.HELD),
])
def test_route(recipient: Recipient, configured: Channels, expected: Route) -> None:
    assert route(recipient, configured) is expected


def test_outcome_is_what_a_reply_may_say() -> None:
    assert {r: outcome(r) for r in Route} == {
        Route.CUSTOM: Outcome.SENT, Route.TEMPLATE: Outcome.SENT, Route.SUBSCRIBE: Outcome.SENT,
        Route.HELD: Outcome.LATER, Route.UNREACHABLE: Outcome.UNREACHABLE}


def _ticket(status: TicketStatus, deputy: str | None) -> Ticket:
    ticket = Ticket.file(citizen_openid=CITIZEN, category="城乡建设", summary="路灯坏了", place="东村",
                         details="", station_code="LL-DC", phone="", share_contact=False, at=datetime(2026, 12, 1))
    ticket.number, ticket.status, ticket.deputy_code = 1001, status, deputy
    return ticket


@pytest.mark.parametrize(("purpose", "status", "deputy", "reason"), [
    (Purpose.ASSIGNMENT, TicketStatus.ASSIGNED, "D001", None),
    (Purpose.ASSIGNMENT, TicketStatus.ASSIGNED, "D002", "transferred"),
    (Purpose.ASSIGNMENT, TicketStatus.ACCEPTED, "D001", "accepted"),
    (Purpose.ASSIGNMENT, TicketStatus.RESOLVED, "D001", "closed"),
    (Purpose.NOTE, TicketStatus.ACCEPTED, "D001", None),
    (Purpose.NOTE, TicketStatus.ACCEPTED, "D002", "transferred"),
    (Purpose.QUEUE, TicketStatus.FILED, None, None),
    (Purpose.QUEUE, TicketStatus.ASSIGNED, "D002", "assigned"),
    (Purpose.STATUS, TicketStatus.RESOLVED, "D001", None),  # the citizen's news stays true
])
def test_stale_reason(purpose: Purpose, status: TicketStatus, deputy: str | None, reason: str | None) -> None:
    recipient = None if purpose is Purpose.STATUS else "D001"
    assert stale_reason(purpose, _ticket(status, deputy), recipient) == reason


# --- fields ---------------------------------------------------------------------------------------
def test_fields_fit_wechat_limits() -> None:
    assert fit("thing3", "东村村委会门口第三根路灯坏了一个星期了，晚上很黑") == "东村村委会门口第三根路灯坏了一个星期了…"
    assert len(fit("thing3", "一" * 40)) == 20
    assert fit("thing2", "城乡\n建设") == "城乡 建设"  # one line
    assert problems(fit_all({"character_string1": "#1001", "thing2": "x" * 30, "time3": "2026年12月1日 10:00"})) == []


@pytest.mark.parametrize(("data", "problem"), [
    ({"first": "您有新工单"}, "first"),  # not shown since 2023
    ({"keyword1": "#1"}, "unknown field type"),
    ({"thing1": "一" * 21}, "21 characters"),
    ({"phrase1": "已办结请评价"}, "phrase1"),  # ≤ 5 Chinese characters
    ({"phrase1": "ok"}, "not a valid phrase"),
    ({"number1": "12a"}, "not a valid number"),
    ({"character_string1": "编号1001"}, "not a valid character_string"),
    ({"time1": "明天"}, "not a valid time"),
    ({"thing1": ""}, "empty"),
])
def test_fields_breaking_the_rules_are_found(data: dict[str, str], problem: str) -> None:
    assert any(problem in p for p in problems(data)), problems(data)


def test_subscribe_fields_may_be_longer_than_template_ones() -> None:
    assert problems({"character_string1": "A" * 32}, template=False) == []
    assert problems({"character_string1": "A" * 32}) != []  # template values: 20 at most


# --- delivery and replies agree ------------------------------------------------------------------
async def test_an_assignment_notice_with_a_template_goes_and_the_reply_says_so() -> None:
    services, gateway = make_services(templates=True), RecordingGateway()
    await seed(services)
    ticket = await submit_report(services, draft())
    assert await channels.reach_outcome(services, WANG_OPENID, "assignment") is Outcome.SENT
    await deliver_due(services, gateway)
    (sent,) = gateway.to(WANG_OPENID)
    assert sent.channel == "template" and problems(sent.data) == []
    assert sent.data["character_string1"] == f"#{ticket.number}"


async def test_a_held_notice_for_a_deputy_who_transferred_the_ticket_is_dropped() -> None:
    services, gateway = make_services(), RecordingGateway()  # no templates: notices are held
    await seed(services)
    ticket = await submit_report(services, draft())
    await deliver_due(services, gateway)
    (held,) = [m for m in await outbox(services) if m.recipient_openid == WANG_OPENID]
    assert held.status == OutboxStatus.HELD
    await record_inbound(services, LI_OPENID)  # 李 is chatting: the transfer notice goes
    reply = await handle_deputy_message(services, WANG, f"转 #{ticket.number} D002")
    texts = services.texts
    assert texts.get("reach_sent", who=texts.get("reach_who_other")) in reply
    assert texts.get("reach_later", who=texts.get("reach_who_citizen")) in reply
    await record_inbound(services, WANG_OPENID)  # 王 writes again: the held notice is released …
    await deliver_due(services, gateway)
    assert gateway.to(WANG_OPENID) == []  # … and dropped, not delivered stale
    (dropped,) = [m for m in await outbox(services, ("dropped",)) if m.recipient_openid == WANG_OPENID]
    assert dropped.last_error == "stale: transferred"
    assert [s.text.split("】")[0] for s in gateway.to(LI_OPENID)] == [f"【转来的工单 #{ticket.number}"]


async def test_a_held_new_ticket_notice_after_accepting_is_dropped_later_ones_still_go() -> None:
    services, gateway = make_services(), RecordingGateway()
    await seed(services)
    ticket = await submit_report(services, draft())
    await deliver_due(services, gateway)
    await handle_deputy_message(services, WANG, f"受理 #{ticket.number}")  # from 我的工单, say
    await record_inbound(services, WANG_OPENID)
    await deliver_due(services, gateway)
    assert [m.last_error for m in await outbox(services, ("dropped",))] == ["stale: accepted"]


async def test_subscribe_notice_outside_the_window_and_43101_means_held() -> None:
    services = make_services()
    services = replace(services, settings=Settings(_env_file=None, subscribe_id_assignment="SUB-ASSIGN"))  # type: ignore[call-arg]
    gateway = RecordingGateway()
    await seed(services)
    await channels.grant_subscription(services, WANG_OPENID, "SUB-ASSIGN")
    first = await submit_report(services, draft())
    await deliver_due(services, gateway)
    assert [(s.channel, s.template_id) for s in gateway.to(WANG_OPENID)] == [("subscribe", "SUB-ASSIGN")]
    assert (await channels.subscriptions(services, WANG_OPENID)) == {"SUB-ASSIGN": 0}  # used up
    assert await channels.reach_outcome(services, WANG_OPENID, "assignment") is Outcome.LATER
    # WeChat knows better (a subscription we counted was refused): 43101 → held, not retried
    for openid in (WANG_OPENID, LI_OPENID):
        await channels.grant_subscription(services, openid, "SUB-ASSIGN")
    gateway.fail("subscribe", api_error(43101))
    second = await submit_report(services, draft(summary="第二件"))
    await deliver_due(services, gateway)
    statuses = {m.ticket_number: m.status for m in await outbox(services)}
    assert (statuses[first.number], statuses[second.number]) == (OutboxStatus.SENT, OutboxStatus.HELD)
    deputy = WANG_OPENID if second.deputy_code == WANG.code else LI_OPENID
    assert (await channels.subscriptions(services, deputy)) == {"SUB-ASSIGN": 0}


async def test_fields_that_break_the_rules_are_not_sent() -> None:
    services, gateway = make_services(templates=True), RecordingGateway()
    async with services.uow() as uow:
        from bot.core.outbound import OutboxMessage
        await uow.outbox.add(OutboxMessage(recipient_openid=CITIZEN, text="x", template_key="status",
                                           template_data={"first": "旧格式"}, created_at=services.clock.now()))
        await uow.commit()
    await deliver_due(services, gateway)
    assert gateway.sent == []
    (failed,) = await outbox(services, ("failed",))
    assert failed.last_error.startswith("template fields invalid: first")
