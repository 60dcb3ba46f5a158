"""The whole first loop through the real entry point: report → routed to the on-duty deputy →
deputy accepts, replies, closes → the citizen sees each step and rates it."""
from __future__ import annotations

import re
from datetime import datetime

import pytest

from bot.core.tickets import TicketStatus
from bot.texts import default_texts
from handlers.deputies import create_bind_code
from e2e_stack import Stack

TEXTS = default_texts()
CITIZEN = "oCitizen-e2e-0001"
OTHER_CITIZEN = "oCitizen-e2e-0002"


async def bind(stack: Stack, deputy_code: str) -> str:
    openid = f"oDeputy-{deputy_code}"
    code = await create_bind_code(stack.bot.services, deputy_code)
    reply = await stack.send(openid, f"绑定 {code}")
    assert deputy_code in reply or "绑定" in reply
    async with stack.bot.services.uow() as uow:
        assert (await uow.deputies.by_openid(openid)).code == deputy_code
    return openid


def asks(reply: str, key: str) -> bool:
    """Whether the reply carries the form's question `key` (its text up to the first example)."""
    question = re.split(r"[，？！。{]", TEXTS.raw(key))[0]
    return question in reply


async def walk_form(stack: Stack, openid: str, first_message: str, *, place: str = "松陵街道 江村",
                    phone: str | None = "13912345678", share: bool = True) -> str:
    """Answer whatever the form asks until it reaches the confirm question; returns that reply."""
    reply = await stack.send(openid, first_message)
    for _ in range(10):
        assert reply, "the form went silent"
        if asks(reply, "form_ask_confirm"):
            return reply
        if asks(reply, "form_ask_phone"):  # one question: the number, and whether the deputy may see it
            answer = "不留" if phone is None else phone if share else f"{phone} 只给工作人员"
        elif asks(reply, "form_ask_details"):
            answer = "晚上路上一片漆黑，老人出门很不方便"
        elif asks(reply, "form_ask_where") or asks(reply, "form_ask_where_station"):
            answer = place
        elif asks(reply, "form_ask_what"):
            answer = "路灯坏了"
        else:
            pytest.fail(f"unexpected form reply: {reply}")
        reply = await stack.send(openid, answer)
    pytest.fail("the form did not reach its confirm question")


def filed_number(reply: str | None) -> int:
    assert reply and (asks(reply, "form_submitted_assigned") or asks(reply, "form_submitted_queued")), reply
    return int(re.search(r"#(\d+)", reply).group(1))


async def fill_report(stack: Stack, openid: str, first_message: str, **answers) -> int:
    await walk_form(stack, openid, first_message, **answers)
    return filed_number(await stack.send(openid, "是"))


async def ticket(stack: Stack, number: int):
    async with stack.bot.services.uow() as uow:
        return await uow.tickets.get(number)


async def test_report_to_deputy_to_rating(stack: Stack) -> None:
    d1, d2 = await bind(stack, "D001"), await bind(stack, "D002")
    welcome = await stack.event(CITIZEN, "subscribe", "qrscene_station:SL-01")
    assert "江村代表联络站" in welcome

    reply = await walk_form(stack, CITIZEN, "我们村口的路灯坏了一个星期了")
    filed_reply = await stack.send(CITIZEN, "是")
    number = filed_number(filed_reply)
    assert TEXTS.get("form_sum_where", place="松陵街道 江村") in reply  # asked, although the QR named the station
    assert "已转给值班代表" in filed_reply and "江村代表联络站" in filed_reply
    filed = await ticket(stack, number)
    assert filed.station_code == "SL-01"
    assert filed.deputy_code in ("D001", "D002")
    assert filed.status is TicketStatus.ASSIGNED
    assert filed.phone == "13912345678" and filed.share_contact
    deputy_openid = d1 if filed.deputy_code == "D001" else d2
    other_openid = d2 if deputy_openid == d1 else d1

    await stack.delivered()
    notice = "\n".join(stack.pushes(deputy_openid))
    assert f"#{number}" in notice and "路灯" in notice
    assert "13912345678" in notice  # the citizen agreed to share it
    assert not any(f"#{number}" in text for text in stack.pushes(other_openid))
    assert stack.pushes(CITIZEN) == []  # the reply to 是 said where it went; no push repeats it

    # someone else's ticket and a wrong number change nothing
    assert await stack.send(other_openid, f"受理 #{number}")
    assert await stack.send(deputy_openid, "受理 #99999")
    assert (await ticket(stack, number)).status is TicketStatus.ASSIGNED

    pushed_before = len(stack.pushes(CITIZEN))
    assert await stack.send(deputy_openid, f"受理 #{number}")
    assert (await ticket(stack, number)).status is TicketStatus.ACCEPTED
    await stack.send(deputy_openid, f"＃{number}　明天上午，我去现场看看（带上电工）！")
    assert (await ticket(stack, number)).status is TicketStatus.REPLIED
    await stack.send(deputy_openid, f"办结 #{number} 路灯已经换好了")
    await stack.delivered()
    citizen_pushes = stack.pushes(CITIZEN)[pushed_before:]
    assert len(citizen_pushes) >= 3, citizen_pushes
    # relayed as written: full-width punctuation is not folded away
    assert any("明天上午，我去现场看看（带上电工）！" in text for text in citizen_pushes)
    assert any("路灯已经换好了" in text for text in citizen_pushes)
    resolved = await ticket(stack, number)
    assert resolved.status is TicketStatus.RESOLVED

    assert await stack.send(CITIZEN, "5 处理很及时")
    rated = await ticket(stack, number)
    assert rated.rating == 5 and "及时" in rated.rating_comment

    mine = await stack.send(CITIZEN, "我的诉求")
    assert f"#{number}" in mine
    timeline = await stack.send(CITIZEN, f"#{number}")
    assert f"#{number}" in timeline
    # another citizen cannot read it
    assert "路灯已经换好了" not in (await stack.send(OTHER_CITIZEN, f"#{number}"))


async def test_retries_of_the_same_message_file_one_report(stack: Stack) -> None:
    await stack.event(CITIZEN, "subscribe", "qrscene_station:SL-01")
    await walk_form(stack, CITIZEN, "小区门口的下水道堵了，污水漫到路上")
    # WeChat retries a message it got no answer for: three posts with the same MsgId
    replies = [await stack.send(CITIZEN, "是", msg_id=4242424242) for _ in range(3)]
    filed_number(replies[0])
    assert all(r == replies[0] for r in replies), replies
    async with stack.bot.services.uow() as uow:
        assert len(await uow.tickets.list_for_citizen(CITIZEN)) == 1


async def test_ticket_waits_in_the_queue_until_a_shift_starts(stack: Stack) -> None:
    d3 = await bind(stack, "D003")
    await stack.event(CITIZEN, "subscribe", "qrscene_station:KF-LB")
    number = await fill_report(stack, CITIZEN, "公司拖欠我们三个月工资不发", phone=None)
    waiting = await ticket(stack, number)
    assert waiting.station_code == "KF-LB"
    assert waiting.deputy_code is None and waiting.status is TicketStatus.FILED

    stack.clock.current = datetime(2026, 12, 1, 14, 0)
    assert await stack.bot.run_job("drain_queues") == 1
    assigned = await ticket(stack, number)
    assert assigned.deputy_code == "D003" and assigned.status is TicketStatus.ASSIGNED
    await stack.delivered()
    assert any(f"#{number}" in text for text in stack.pushes(d3))
    assert "13912345678" not in "".join(stack.pushes(d3))


async def test_phone_is_not_shown_without_consent(stack: Stack) -> None:
    d1, d2 = await bind(stack, "D001"), await bind(stack, "D002")
    await stack.event(CITIZEN, "subscribe", "qrscene_station:SL-01")
    number = await fill_report(stack, CITIZEN, "河道里有人倒垃圾，味道很大", phone="13987654321", share=False)
    await stack.delivered()
    filed = await ticket(stack, number)
    assert filed.phone == "13987654321" and not filed.share_contact
    deputy_openid = d1 if filed.deputy_code == "D001" else d2
    notice = "\n".join(stack.pushes(deputy_openid))
    assert f"#{number}" in notice
    assert "13987654321" not in notice


async def test_unbound_sender_gets_a_clear_answer(stack: Stack) -> None:
    await bind(stack, "D001")
    await stack.event(CITIZEN, "subscribe", "qrscene_station:SL-01")
    number = await fill_report(stack, CITIZEN, "我们村口的路灯坏了一个星期了")
    stranger = "oStranger-e2e-0009"
    assert await stack.send(stranger, f"办结 #{number} 已处理") == TEXTS.get("deputy_not_bound")
    assert (await ticket(stack, number)).status is not TicketStatus.RESOLVED
    assert await stack.send(stranger, "绑定 000000") == TEXTS.get("bind_code_invalid")
    async with stack.bot.services.uow() as uow:
        assert await uow.deputies.by_openid(stranger) is None

    # the same account, once bound, is a deputy at once (no stale "not a deputy" memory)
    code = await create_bind_code(stack.bot.services, "D002")
    await stack.send(stranger, f"绑定 {code}")
    async with stack.bot.services.uow() as uow:
        open_tickets = await uow.tickets.list_open_for_deputy("D002")
    listing = await stack.send(stranger, "我的工单")
    if open_tickets:
        assert listing.startswith(TEXTS.get("deputy_my_tickets_head", count=len(open_tickets)))
        assert listing.endswith(TEXTS.get("deputy_my_tickets_foot"))
    else:
        assert listing == TEXTS.get("deputy_my_tickets_empty")


@pytest.mark.parametrize("text", ["受理 #99999999999999999999", "#99999999999999999999 hi"])
async def test_overlong_ticket_numbers_break_nothing(stack: Stack, text: str) -> None:
    d1, d2 = await bind(stack, "D001"), await bind(stack, "D002")
    await stack.event(CITIZEN, "subscribe", "qrscene_station:SL-01")
    number = await fill_report(stack, CITIZEN, "我们村口的路灯坏了一个星期了")
    for sender in (d1, d2, CITIZEN, OTHER_CITIZEN):
        reply = await stack.send(sender, text)
        assert reply and reply != TEXTS.get("wechat_handler_error"), (sender, reply)
    assert (await ticket(stack, number)).status is TicketStatus.ASSIGNED


async def test_a_citizen_writing_like_a_deputy_command_mid_form_keeps_the_form(stack: Stack) -> None:
    await stack.event(CITIZEN, "subscribe", "qrscene_station:SL-01")
    reply = await stack.send(CITIZEN, "我们村口的路灯坏了一个星期了")
    assert TEXTS.get("form_ask_where_station", station="江村代表联络站", examples="江村、梅里社区") in reply
    assert asks(await stack.send(CITIZEN, "梅里社区"), "form_ask_details")
    reply = await stack.send(CITIZEN, "受理3天了还没人管")
    assert reply != TEXTS.get("deputy_not_bound") and asks(reply, "form_ask_phone"), reply


@pytest.mark.parametrize("text, expected", [
    ("我家着火了快来人", "119"),
    ("我要上访，法院判决不公", "信访"),
])
async def test_out_of_scope_requests_are_redirected(stack: Stack, text: str, expected: str) -> None:
    reply = await stack.send(CITIZEN, text)
    assert expected in reply
    async with stack.bot.services.uow() as uow:
        assert not await uow.tickets.list_for_citizen(CITIZEN)
