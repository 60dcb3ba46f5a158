"""Deputies: binding with a one-time code; ticket commands by message and every wrong input."""
from __future__ import annotations

import re

import pytest

from bot.core.errors import DomainError
from bot.core.people import Deputy
from bot.core.tickets import TicketStatus
from fakes import (
    stale_saves,
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
    bound_deputy,
    create_bind_code,
    handle_deputy_message,
    is_deputy_command,
    parse_bind_command,
    unbound_reply,
)
from handlers.services import Services
from handlers.tickets import submit_report

WANG, LI, ZHOU, CHEN = DEPUTIES


def later(services: Services, who: str = "reach_who_citizen") -> str:
    """What a reply says of a push that waits until its recipient next opens the account."""
    return services.texts.get("reach_later", who=services.texts.get(who))


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
    assert [e.kind for e in ticket.timeline][-2:] == ["accepted", "replied"]
    citizen = [m.text for m in await outbox(services) if m.recipient_openid == CITIZEN]
    assert "明天上午去看" in citizen[-1]


@pytest.mark.parametrize("template", ["#{n} 已经联系了供电所", "＃{n}已经联系了供电所", "编号{n}：已经联系了供电所",
                                      "# {n}，已经联系了供电所"])
async def test_relay_spellings(one_ticket: tuple[Services, int], template: str) -> None:
    services, n = one_ticket
    reply = await handle_deputy_message(services, WANG, template.format(n=n))
    assert reply is not None and "已记下" in reply and later(services) in reply  # nobody's window is open
    ticket = await get_ticket(services, n)
    assert ticket.status is TicketStatus.REPLIED
    assert ticket.timeline[-1].text == "已经联系了供电所"
    citizen = [m for m in await outbox(services) if m.recipient_openid == CITIZEN]
    assert "王晓梅代表回复" in citizen[-1].text and "已经联系了供电所" in citizen[-1].text


async def test_resolve_asks_the_citizen_to_rate(one_ticket: tuple[Services, int]) -> None:
    services, n = one_ticket
    reply = await handle_deputy_message(services, WANG, f"办结＃{n}　路灯已经修好")
    assert reply is not None and "已办结" in reply
    ticket = await get_ticket(services, n)
    assert ticket.status is TicketStatus.RESOLVED and ticket.timeline[-1].text == "路灯已经修好"
    last = [m for m in await outbox(services) if m.recipient_openid == CITIZEN][-1]
    assert "路灯已经修好" in last.text and "满意度" in last.text
    assert last.template_data["thing2"] == "已办结，请评价"


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
    return ticket.status, ticket.deputy_code, ticket.station_code, len(ticket.timeline), len(await outbox(services))


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


async def test_a_sender_is_looked_up_in_one_bucket_of_the_bound_accounts() -> None:
    import json

    from bot.core import keys

    services = make_services()
    await seed(services)  # WANG, LI and ZHOU are bound
    assert await bound_deputy(services, CITIZEN) is None
    buckets = {key: json.loads(await services.kv.get(key) or "null") for key in keys.all_bound_deputies()}
    assert None not in buckets.values()  # every bucket kept, the empty ones too
    assert sorted(o for openids in buckets.values() for o in openids) == sorted([WANG_OPENID, LI_OPENID, ZHOU_OPENID])
    assert all(keys.bound_deputies(o) == key for key, openids in buckets.items() for o in openids)
    assert (await bound_deputy(services, LI_OPENID)).code == LI.code

    code = await create_bind_code(services, "D004")
    await bind_deputy(services, "oChenNew000000000004", code)  # drops the buckets: known at once
    assert (await bound_deputy(services, "oChenNew000000000004")).code == "D004"


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



# --- a citizen's words are not deputy commands (B3) ----------------------------------------------
CITIZEN_SENTENCES = ["受理3天了还没人管", "转2趟公交才能到医院", "办结2个月了路灯又坏了", "转给12345热线也没用",
                     "受理１０天了", "办结3次都没用"]


@pytest.mark.parametrize("text", CITIZEN_SENTENCES)
def test_a_bare_number_running_into_words_is_no_command(text: str) -> None:
    services = make_services()
    assert is_deputy_command(services.texts, text) is False
    assert unbound_reply(services, text) is None


@pytest.mark.parametrize("text", CITIZEN_SENTENCES)
async def test_a_bound_deputy_writing_such_words_changes_no_ticket(text: str) -> None:
    services = make_services()
    await seed(services)
    numbers = [(await submit_report(services, draft())).number for _ in range(3)]
    before = [await snapshot(services, n) for n in numbers]
    assert await handle_deputy_message(services, WANG, text) is None
    assert [await snapshot(services, n) for n in numbers] == before


@pytest.mark.parametrize(
    ("template", "said"),
    [("受理 {n}", ""), ("受理 #{n} 明天去", "明天去"), ("受理#{n}明天去", "明天去"), ("受理＃１００１明天去", "明天去"),
     ("受理　{n}　明天去", "明天去"), ("受理 {n}：明天去", "明天去"), ("受理{n}", ""), ("受理{n}。", ""),
     ("受理编号{n}明天去", "明天去")],
)
async def test_marked_numbers_may_run_into_text_bare_ones_need_a_separator(
    one_ticket: tuple[Services, int], template: str, said: str
) -> None:
    services, n = one_ticket
    assert n == 1001
    reply = await handle_deputy_message(services, WANG, template.format(n=n))
    assert reply == services.texts.get("deputy_accepted_ok", number=n, reach=later(services))
    ticket = await get_ticket(services, n)
    assert ticket.status is (TicketStatus.REPLIED if said else TicketStatus.ACCEPTED)
    assert (ticket.timeline[-1].text == said) if said else ticket.timeline[-1].kind == "accepted"


async def test_resolve_and_transfer_with_marked_numbers(one_ticket: tuple[Services, int]) -> None:
    services, n = one_ticket
    assert await handle_deputy_message(services, WANG, f"转 #{n} D002") == services.texts.get(
        "deputy_transfer_ok", number=n, deputy="李建国", reach=later(services, "reach_who_both"))
    assert await handle_deputy_message(services, LI, f"办结 #{n} 已修好") == services.texts.get(
        "deputy_resolved_ok", number=n, reach=later(services))
    assert (await get_ticket(services, n)).timeline[-1].text == "已修好"


# --- overlong numbers (B4) ---------------------------------------------------------------------
@pytest.mark.parametrize("text", ["受理 #99999999999999999999", "#99999999999999999999 hi", "办结 #1234567890 好了",
                                  "转 99999999999999999999 D002", "受理 1234567890"])
async def test_a_number_of_more_than_nine_digits_is_no_ticket_reference(
    one_ticket: tuple[Services, int], text: str
) -> None:
    services, n = one_ticket
    assert is_deputy_command(services.texts, text) is False

    class NoHugeNumbers:
        """Fails like PostgreSQL's int4 (or SQLite's int64) when asked for a number that big."""

        def __init__(self, inner):
            self._inner = inner

        def __call__(self):
            uow = self._inner()
            get = uow.tickets.get

            async def checked_get(number: int):
                if number > 2**31 - 1:
                    raise OverflowError(number)
                return await get(number)

            uow.tickets.get = checked_get
            return uow

    services.uow = NoHugeNumbers(services.uow)
    before = await snapshot(services, n)
    assert await handle_deputy_message(services, WANG, text) is None  # not a command: nothing is looked up
    assert await snapshot(services, n) == before


# --- replying before accepting (B5) --------------------------------------------------------------
async def test_replying_to_an_assigned_ticket_accepts_it_first(one_ticket: tuple[Services, int]) -> None:
    services, n = one_ticket
    pushed = len([m for m in await outbox(services) if m.recipient_openid == CITIZEN])
    reply = await handle_deputy_message(services, WANG, f"#{n} 明天上午去看")
    assert reply == services.texts.get("deputy_replied_accepted_ok", number=n, reach=later(services))
    ticket = await get_ticket(services, n)
    assert [e.kind for e in ticket.timeline][-2:] == ["accepted", "replied"]
    assert ticket.status is TicketStatus.REPLIED
    # one message to the citizen: the reply says the deputy took it on
    citizen = [m for m in await outbox(services) if m.recipient_openid == CITIZEN][pushed:]
    assert [m.template_data["thing2"] for m in citizen] == [services.texts.get("notify_status_replied")]
    # so 受理 afterwards is rightly "already accepted", and changes nothing
    before = await snapshot(services, n)
    assert await handle_deputy_message(services, WANG, f"受理 #{n}") == services.texts.get(
        "ticket_already_accepted", number=n)
    assert await snapshot(services, n) == before
    # a second reply is an ordinary reply
    assert await handle_deputy_message(services, WANG, f"#{n} 到了") == services.texts.get(
        "deputy_replied_ok", number=n, reach=later(services))
    assert [e.kind for e in (await get_ticket(services, n)).timeline].count("accepted") == 1


# --- bind codes are never handed out twice (B6) ------------------------------------------------
async def test_a_new_bind_code_never_replaces_a_valid_one(monkeypatch: pytest.MonkeyPatch) -> None:
    services = make_services()
    await seed(services)
    draws = iter([123456, 123456, 123456, 654321])
    monkeypatch.setattr("handlers.deputies.secrets.randbelow", lambda _: next(draws))
    assert await create_bind_code(services, "D004") == "123456"
    assert await create_bind_code(services, "D001") == "654321"  # 123456 is Chen's until used
    assert await bind_deputy(services, "oChenNew000000000004", "123456") == services.texts.get(
        "bind_ok", name="陈卫东", station="盛泽镇代表之家", open_hint="")
    assert (await deputy_by_code(services, "D004")).openid == "oChenNew000000000004"


# --- guessing bind codes (P3) --------------------------------------------------------------------
async def test_failed_bind_attempts_are_limited_per_account() -> None:
    clock = FixedClock()
    services = make_services(clock)
    await seed(services)
    code = await create_bind_code(services, "D004")
    wrong = "000000" if code != "000000" else "111111"
    guesser = "oGuesser0000000000001"
    for attempt in range(5):
        assert await bind_deputy(services, guesser, wrong if attempt % 2 else "12345") == services.texts.get(
            "bind_code_invalid")
        clock.advance(minutes=5)
    # the sixth try is refused even with the right code, and says when to come back
    assert await bind_deputy(services, guesser, code) == services.texts.get("bind_too_many_tries", minutes=35)
    assert (await deputy_by_code(services, "D004")).openid is None
    # another account is not affected
    assert "陈卫东" in await bind_deputy(services, "oChenNew000000000004", code)
    # an hour after the first failure the account may try again
    code = await create_bind_code(services, "D003")
    clock.advance(minutes=35)
    assert "周玉兰" in await bind_deputy(services, guesser, code)


async def test_a_successful_bind_clears_earlier_failures() -> None:
    services = make_services()
    await seed(services)
    code = await create_bind_code(services, "D004")
    account = "oChenNew000000000004"
    for _ in range(4):
        await bind_deputy(services, account, "000001")
    assert "陈卫东" in await bind_deputy(services, account, code)
    for _ in range(4):
        assert await bind_deputy(services, account, "000001") == services.texts.get("bind_code_invalid")


# --- a concurrent change to the same ticket (B7) -------------------------------------------------
async def test_a_deputy_command_is_retried_once_after_a_concurrent_change(
    one_ticket: tuple[Services, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    services, n = one_ticket
    conflicts = stale_saves(monkeypatch, 1)
    assert await handle_deputy_message(services, WANG, f"受理 #{n}") == services.texts.get(
        "deputy_accepted_ok", number=n, reach=later(services))
    assert conflicts == []  # the conflict happened and was retried
    ticket = await get_ticket(services, n)
    assert [e.kind for e in ticket.timeline].count("accepted") == 1
    assert ticket.status is TicketStatus.ACCEPTED


# --- long texts (B10) --------------------------------------------------------------------------
async def test_ticket_detail_and_assignment_fit_in_one_wechat_message() -> None:
    services = make_services()
    await seed(services)
    ticket = await submit_report(services, draft(summary="路" * 61, place="黎里镇东村" + "某" * 195,
                                                 details="很" * 2000, phone="13912345678", share_contact=True))
    detail = await handle_deputy_message(services, WANG, f"#{ticket.number}")
    assert detail is not None and "很很很" in detail and "…" in detail
    assert len(detail.encode()) <= 2048
    [notice] = [m for m in await outbox(services) if m.recipient_openid == WANG_OPENID]
    assert "13912345678" in notice.text and len(notice.text.encode()) <= 2048


async def test_my_tickets_is_capped_and_says_how_many_more() -> None:
    services = make_services()
    await seed(services)
    for _ in range(15 * 2):  # D001 and D002 share them
        await submit_report(services, draft(summary="路" * 61, place="黎里镇东村" + "某" * 195))
    listing = await handle_deputy_message(services, WANG, "我的工单")
    assert listing is not None and len(listing.encode()) <= 2048
    assert listing.startswith(services.texts.get("deputy_my_tickets_head", count=15))
    assert services.texts.get("deputy_my_tickets_more", count=5) in listing
    assert listing.count("【待受理】") == 10


# --- words from the texts ------------------------------------------------------------------------
async def test_deputy_command_words_come_from_the_texts(one_ticket: tuple[Services, int]) -> None:
    from bot.texts import Texts

    services, n = one_ticket
    words = services.texts.raw("deputy_words")
    entries = {key: services.texts.raw(key) for key in ("deputy_help", "deputy_need_number", "deputy_my_tickets_empty",
                                                        "deputy_my_tickets_head", "deputy_my_tickets_line",
                                                        "deputy_my_tickets_foot", "deputy_status_assigned")}
    entries["deputy_words"] = {"my_tickets": ["待办工单"], "help": ["说明书"], "examples": {**words["examples"], "受理": "受理 #7"}}
    services.texts = Texts(entries)
    assert (await handle_deputy_message(services, WANG, "待 办工单") or "").startswith(
        services.texts.get("deputy_my_tickets_head", count=1))
    assert await handle_deputy_message(services, WANG, "我的工单") is None
    assert await handle_deputy_message(services, WANG, "说明书") == services.texts.get("deputy_help")
    assert await handle_deputy_message(services, WANG, "受理") == services.texts.get("deputy_need_number", example="受理 #7")


# --- texts too long for one WeChat message ------------------------------------------------------
@pytest.mark.parametrize("command", ["#{n} {text}", "受理 #{n} {text}", "办结 #{n} {text}"])
async def test_a_reply_too_long_for_one_message_is_refused_whole(one_ticket: tuple[Services, int],
                                                                 command: str) -> None:
    from handlers.notify import RELAY_MAX_CHARS

    services, n = one_ticket
    before = await snapshot(services, n)
    too_long = "明天上午我去现场看一下情况。" * (RELAY_MAX_CHARS // 14 + 1)
    reply = await handle_deputy_message(services, WANG, command.format(n=n, text=too_long))
    assert reply == services.texts.get("relay_too_long", number=n, count=len(too_long), limit=RELAY_MAX_CHARS)
    assert await snapshot(services, n) == before  # nothing cut, nothing sent, nothing changed

    fits = "明天上午我去现场看一下情况。" * (RELAY_MAX_CHARS // 14)
    assert await handle_deputy_message(services, WANG, command.format(n=n, text=fits)) != reply
    citizen = [m for m in await outbox(services) if m.recipient_openid == CITIZEN]
    assert fits in citizen[-1].text and len(citizen[-1].text.encode()) <= 2048
