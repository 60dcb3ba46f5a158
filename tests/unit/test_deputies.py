"""Deputies: binding with a one-time code; ticket commands by message and every wrong input."""
from __future__ import annotations

import re

import pytest

from bot.domain import Deputy, DomainError, TicketStatus
from fakes import (
    CITIZEN,
    DEPUTIES,
    LI_OPENID,
    WANG_OPENID,
    ZHOU_OPENID,
    FixedClock,
    draft,
    get_ticket,
    make_services,
    outbox,
    seed,
)
from handlers.deputies import (
    bind_deputy,
    create_bind_code,
    handle_deputy_message,
    parse_bind_command,
    unbound_reply,
)
from handlers.services import Services
from handlers.tickets import submit_report

WANG, LI, ZHOU, CHEN = DEPUTIES


async def deputy_by_code(services: Services, code: str) -> Deputy:
    async with services.uow() as uow:
        deputy = await uow.deputies.get(code)
    assert deputy is not None
    return deputy


# --- binding -----------------------------------------------------------------------------------
async def test_bind_code_binds_once() -> None:
    services = make_services()
    await seed(services)
    code = await create_bind_code(services, "D004")
    assert re.fullmatch(r"\d{6}", code)

    reply = await bind_deputy(services, "oChenNew000000000004", code)
    assert "绑定成功" in reply and "陈卫东" in reply and "盛泽镇代表之家" in reply
    assert (await deputy_by_code(services, "D004")).openid == "oChenNew000000000004"

    # single use: a second try (even by the same account) is refused, nothing changes
    again = await bind_deputy(services, "oSomeoneElse00000009", code)
    assert "绑定码不对" in again
    assert (await deputy_by_code(services, "D004")).openid == "oChenNew000000000004"


async def test_bind_code_expires_after_24_hours() -> None:
    clock = FixedClock()
    services = make_services(clock)
    await seed(services)
    code = await create_bind_code(services, "D004")
    clock.advance(hours=24)
    assert "绑定码不对" in await bind_deputy(services, "oChenNew000000000004", code)
    assert (await deputy_by_code(services, "D004")).openid is None


async def test_bind_code_just_inside_24_hours_works() -> None:
    clock = FixedClock()
    services = make_services(clock)
    await seed(services)
    code = await create_bind_code(services, "D004")
    clock.advance(hours=23, minutes=59)
    assert "绑定成功" in await bind_deputy(services, "oChenNew000000000004", code)


async def test_bind_code_for_unknown_deputy_is_a_domain_error() -> None:
    services = make_services()
    await seed(services)
    with pytest.raises(DomainError) as raised:
        await create_bind_code(services, "D404")
    assert raised.value.key == "deputy_unknown"
    assert "D404" in services.texts.get(raised.value.key, **raised.value.params)


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", "999999"])
async def test_bad_bind_codes_change_nothing(code: str) -> None:
    services = make_services()
    await seed(services)
    await create_bind_code(services, "D004")
    assert "绑定码不对" in await bind_deputy(services, "oX00000000000000001", code)
    assert (await deputy_by_code(services, "D004")).openid is None


async def test_bind_without_code_explains_the_format() -> None:
    services = make_services()
    assert "绑定 123456" in await bind_deputy(services, "oX00000000000000001", "")


async def test_bind_reply_mentions_open_tickets() -> None:
    services = make_services()
    await seed(services)
    await submit_report(services, draft())  # goes to D001
    code = await create_bind_code(services, "D001")
    reply = await bind_deputy(services, "oWangPhone2000000001", code)
    assert "1 件待办工单" in reply


async def test_full_width_bind_code_works() -> None:
    services = make_services()
    await seed(services)
    code = await create_bind_code(services, "D004")
    wide = "".join(chr(ord(c) + 0xFEE0) for c in code)
    parsed = parse_bind_command(f"绑定　{wide}")
    assert parsed == code
    assert "绑定成功" in await bind_deputy(services, "oChenNew000000000004", parsed)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("绑定 123456", "123456"),
        ("绑定123456", "123456"),
        ("绑定：123456", "123456"),
        ("绑定", ""),
        ("绑定手机号", "手机号"),  # the caller decides; not digits → not a bind
        ("我要绑定", None),
        ("你好", None),
    ],
)
def test_parse_bind_command(text: str, expected: str | None) -> None:
    assert parse_bind_command(text) == expected


# --- ticket commands ---------------------------------------------------------------------------
@pytest.fixture
async def one_ticket() -> tuple[Services, int]:
    services = make_services()
    await seed(services)
    ticket = await submit_report(services, draft())
    assert ticket.deputy_code == "D001"
    return services, ticket.number


@pytest.mark.parametrize(
    "template",
    ["受理 #{n}", "受理#{n}", "受理 ＃{n}", "受理　＃{n}", "受理编号{n}", "受理 编号 {n}", "受理 {n}", " 受理 # {n} 。",
     "受理 " + "{wide}"],
)
async def test_accept_spellings(one_ticket: tuple[Services, int], template: str) -> None:
    services, n = one_ticket
    wide = "＃" + "".join(chr(ord(c) + 0xFEE0) for c in str(n))
    reply = await handle_deputy_message(services, WANG, template.format(n=n, wide=wide))
    assert reply is not None and f"#{n} 已受理" in reply
    assert (await get_ticket(services, n)).status is TicketStatus.ACCEPTED
    citizen = [m for m in await outbox(services) if m.recipient_openid == CITIZEN]
    assert "已经接手" in citizen[-1].text


async def test_accept_with_words_relays_them(one_ticket: tuple[Services, int]) -> None:
    services, n = one_ticket
    await handle_deputy_message(services, WANG, f"受理 #{n} 明天上午去看")
    ticket = await get_ticket(services, n)
    assert [e.kind for e in ticket.events][-2:] == ["accepted", "replied"]
    citizen = [m.text for m in await outbox(services) if m.recipient_openid == CITIZEN]
    assert "明天上午去看" in citizen[-1]


@pytest.mark.parametrize("template", ["#{n} 已经联系了供电所", "＃{n}已经联系了供电所", "编号{n}：已经联系了供电所",
                                      "# {n}，已经联系了供电所"])
async def test_relay_spellings(one_ticket: tuple[Services, int], template: str) -> None:
    services, n = one_ticket
    reply = await handle_deputy_message(services, WANG, template.format(n=n))
    assert reply is not None and "转给" in reply
    ticket = await get_ticket(services, n)
    assert ticket.status is TicketStatus.REPLIED
    assert ticket.events[-1].text == "已经联系了供电所"
    citizen = [m for m in await outbox(services) if m.recipient_openid == CITIZEN]
    assert "王晓梅代表回复" in citizen[-1].text and "已经联系了供电所" in citizen[-1].text


async def test_resolve_asks_the_citizen_to_rate(one_ticket: tuple[Services, int]) -> None:
    services, n = one_ticket
    reply = await handle_deputy_message(services, WANG, f"办结＃{n}　路灯已经修好")
    assert reply is not None and "已办结" in reply
    ticket = await get_ticket(services, n)
    assert ticket.status is TicketStatus.RESOLVED and ticket.events[-1].text == "路灯已经修好"
    last = [m for m in await outbox(services) if m.recipient_openid == CITIZEN][-1]
    assert "路灯已经修好" in last.text and "满意度" in last.text
    assert last.template_data["keyword2"] == "已办结，请评价"


async def test_transfer_to_another_deputy(one_ticket: tuple[Services, int]) -> None:
    services, n = one_ticket
    reply = await handle_deputy_message(services, WANG, f"转 #{n} D003")
    assert reply is not None and "周玉兰" in reply and "已转给" in reply
    ticket = await get_ticket(services, n)
    assert (ticket.deputy_code, ticket.station_code, ticket.status) == ("D003", "LL-HOME", TicketStatus.ASSIGNED)
    messages = await outbox(services)
    to_zhou = [m for m in messages if m.recipient_openid == ZHOU_OPENID]
    assert len(to_zhou) == 1 and "王晓梅代表把这件工单转给您" in to_zhou[0].text and f"受理 #{n}" in to_zhou[0].text
    assert "周玉兰代表继续办理" in [m for m in messages if m.recipient_openid == CITIZEN][-1].text
    # the old deputy can no longer act on it, the new one can
    assert "不是分给您的" in (await handle_deputy_message(services, WANG, f"受理 #{n}") or "")
    assert "已受理" in (await handle_deputy_message(services, ZHOU, f"受理 #{n}") or "")


@pytest.mark.parametrize("target", ["d003", "周玉兰", "给 D003", "D003代表", "给周玉兰代表"])
async def test_transfer_target_spellings(one_ticket: tuple[Services, int], target: str) -> None:
    services, n = one_ticket
    reply = await handle_deputy_message(services, WANG, f"转 #{n} {target}")
    assert reply is not None and "已转给周玉兰代表" in reply


async def test_transfer_to_an_unbound_deputy_says_so(one_ticket: tuple[Services, int]) -> None:
    services, n = one_ticket
    reply = await handle_deputy_message(services, WANG, f"转 #{n} D004")
    assert reply is not None and "还没有绑定微信" in reply
    assert (await get_ticket(services, n)).deputy_code == "D004"


async def snapshot(services: Services, n: int) -> tuple[object, ...]:
    ticket = await get_ticket(services, n)
    return ticket.status, ticket.deputy_code, ticket.station_code, len(ticket.events), len(await outbox(services))


@pytest.mark.parametrize(
    ("who", "text", "expected"),
    [
        ("wang", "受理 #9999", "没有找到工单 #9999"),
        ("wang", "#9999 你好", "没有找到工单 #9999"),
        ("wang", "办结 #9999 好了", "没有找到工单 #9999"),
        ("wang", "转 #9999 D002", "没有找到工单 #9999"),
        ("li", "受理 #{n}", "不是分给您的"),
        ("li", "#{n} 我来看看", "不是分给您的"),
        ("li", "办结 #{n} 好了", "不是分给您的"),
        ("li", "转 #{n} D003", "不是分给您的"),
        ("wang", "转 #{n} D404", "没有编号为 D404 的代表"),
        ("wang", "转 #{n} 张三", "没有编号为 张三 的代表"),
        ("wang", "转 #{n} D001", "不用转给自己"),
        ("wang", "转 #{n}", "请写上要转给哪位代表"),
        ("wang", "办结 #{n}", "请写上办理结果"),
        ("wang", "受理", "请写上工单编号"),
        ("wang", "办结", "请写上工单编号"),
        ("wang", "转", "请写上工单编号"),
        ("wang", "受理 #", "请写上工单编号"),
        ("wang", "办结 编号", "请写上工单编号"),
    ],
)
async def test_wrong_input_gets_a_clear_answer_and_changes_nothing(
    one_ticket: tuple[Services, int], who: str, text: str, expected: str
) -> None:
    services, n = one_ticket
    deputy = WANG if who == "wang" else LI
    before = await snapshot(services, n)
    reply = await handle_deputy_message(services, deputy, text.format(n=n))
    assert reply is not None and expected in reply
    assert await snapshot(services, n) == before
    assert services.kick_delivery.count == 1  # type: ignore[attr-defined]  # only the submit


async def test_closed_ticket_cannot_be_changed(one_ticket: tuple[Services, int]) -> None:
    services, n = one_ticket
    await handle_deputy_message(services, WANG, f"办结 #{n} 好了")
    before = await snapshot(services, n)
    for text in (f"受理 #{n}", f"#{n} 还有一句", f"办结 #{n} 再办一次", f"转 #{n} D002"):
        reply = await handle_deputy_message(services, WANG, text)
        assert reply is not None and "已经办结" in reply, text
    assert await snapshot(services, n) == before


async def test_accepting_twice(one_ticket: tuple[Services, int]) -> None:
    services, n = one_ticket
    await handle_deputy_message(services, WANG, f"受理 #{n}")
    before = await snapshot(services, n)
    assert "已经受理过了" in (await handle_deputy_message(services, WANG, f"受理 #{n}") or "")
    assert await snapshot(services, n) == before


@pytest.mark.parametrize("text", ["你好", "我们村的路灯坏了", "我的诉求", "谢谢", "转发一下", "1024", "", "受理了吗 #", "受理一下"])
async def test_other_text_is_not_a_deputy_command(one_ticket: tuple[Services, int], text: str) -> None:
    services, _ = one_ticket
    assert await handle_deputy_message(services, WANG, text) is None


async def test_bare_number_shows_own_ticket_or_defers(one_ticket: tuple[Services, int]) -> None:
    services, n = one_ticket
    detail = await handle_deputy_message(services, WANG, f"#{n}")
    assert detail is not None and f"工单 #{n}【待受理】" in detail and "村口的路灯" in detail
    assert await handle_deputy_message(services, LI, f"#{n}") is None  # the citizen dialogue's business
    assert await handle_deputy_message(services, WANG, "#9999") is None


async def test_a_deputy_writing_about_their_own_report_is_a_citizen() -> None:
    services = make_services()
    await seed(services)
    ticket = await submit_report(services, draft(citizen_openid=LI_OPENID))  # Li reports as a citizen
    assert ticket.deputy_code == "D001"
    assert await handle_deputy_message(services, LI, f"#{ticket.number} 还有补充") is None


async def test_my_tickets_and_help(one_ticket: tuple[Services, int]) -> None:
    services, n = one_ticket
    listing = await handle_deputy_message(services, WANG, "我的工单")
    assert listing is not None
    assert "1 件" in listing and f"#{n}【待受理】城乡建设" in listing
    assert await handle_deputy_message(services, LI, " 我的 工单 ") == services.texts.get("deputy_my_tickets_empty")
    await handle_deputy_message(services, WANG, f"办结 #{n} 好了")
    assert await handle_deputy_message(services, WANG, "我的工单") == services.texts.get("deputy_my_tickets_empty")
    help_text = await handle_deputy_message(services, WANG, "帮助")
    assert help_text is not None and "受理 #1024" in help_text and "办结" in help_text and "转 #1024" in help_text


async def test_unused_openid_of_seeded_deputy() -> None:
    # the seed binds the deputies that have an openid and leaves D004 unbound
    services = make_services()
    await seed(services)
    assert (await deputy_by_code(services, "D001")).openid == WANG_OPENID
    assert (await deputy_by_code(services, "D004")).openid is None
    assert CHEN.openid is None


@pytest.mark.parametrize(
    ("text", "is_command"),
    [
        ("受理 #1024", True),
        ("办结 编号1024 修好了", True),
        ("转 #1024 D002", True),
        ("我的工单", True),
        ("受理", True),
        ("#1024 谢谢", False),  # citizens write about their tickets like this
        ("#1024", False),
        ("我的诉求", False),
        ("路灯坏了", False),
    ],
)
def test_unbound_sender_giving_a_deputy_command_is_told(text: str, is_command: bool) -> None:
    services = make_services()
    reply = unbound_reply(services, text)
    assert (reply is not None) is is_command
    if reply is not None:
        assert "还没有绑定代表身份" in reply

