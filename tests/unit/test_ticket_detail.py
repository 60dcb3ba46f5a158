"""Issue 8 §3: a deputy pages through a whole report (详情 #n, 下一页), each page one WeChat message;
only the ticket's deputy or its station's; signed links for the ticket page."""
from __future__ import annotations

from datetime import timedelta

from bot.core.tickets import Attachment
from fakes import CITIZEN, DEPUTIES, ZHOU_OPENID, draft, make_services, seed
from handlers import ticket_links
from handlers.chat import ROUTERS
from handlers.chat.router import Dispatcher
from handlers.ticket_detail import PAGE_MAX_BYTES, split_pages
from handlers.tickets import submit_report

WANG, LI, ZHOU = DEPUTIES[0], DEPUTIES[1], DEPUTIES[2]
LONG = "".join(f"第{i}句：村口那段路的路灯已经坏了很久，晚上老人孩子出门都很不方便。" for i in range(1, 61))  # ~2000 字


def test_pages_fit_one_wechat_message_and_lose_nothing() -> None:
    text = ("开头\n" + LONG + "\n结尾") * 2
    pages = split_pages(text)
    assert len(pages) > 3
    assert all(len(p.encode("utf-8")) <= PAGE_MAX_BYTES - 120 for p in pages)
    assert "".join(pages).replace("\n", "") == text.replace("\n", "")


async def _world():
    services = make_services()
    await seed(services)
    attachments = [Attachment("image", media_id="m1", url="http://mmbiz.qpic.cn/abc/0"),
                   Attachment("voice", media_id="v1", text="路灯一直不亮")]
    ticket = await submit_report(services, draft(details=LONG, phone="13812345678", share_contact=True,
                                                 attachments=attachments))
    return services, ticket, Dispatcher(services, ROUTERS)


async def say(dispatcher: Dispatcher, openid: str, text: str) -> str | None:
    from bot.core.inbound import Inbound, InboundKind

    say.n = getattr(say, "n", 0) + 1
    return await dispatcher.handle(Inbound(openid, InboundKind.TEXT, created_at=say.n, msg_id=str(10_000 + say.n), text=text))


async def test_a_deputy_pages_through_the_whole_report() -> None:
    services, ticket, chat = await _world()
    deputy = WANG if ticket.deputy_code == WANG.code else LI
    pages = [await say(chat, deputy.openid, f"详情 #{ticket.number}")]
    while "下一页" in pages[-1]:
        pages.append(await say(chat, deputy.openid, "下一页"))
        assert len(pages) < 10
    assert len(pages) >= 3 and all(len(p.encode("utf-8")) <= PAGE_MAX_BYTES for p in pages)
    whole = "".join(pages)
    assert "第1句" in whole and "第60句" in whole and "…" not in whole  # nothing cut
    assert "13812345678" in whole  # theirs, and the citizen agreed
    assert "http://mmbiz.qpic.cn/abc/0" in whole and "路灯一直不亮" in whole  # photo, voice text
    assert f"/t/{ticket.number}?d={deputy.code}" in whole  # the ticket page, for this deputy
    assert pages[-1].endswith(services.texts.get("detail_footer_last", page=len(pages), total=len(pages)))
    assert await say(chat, deputy.openid, "下一页") == services.texts.get("detail_no_more", number=ticket.number)


async def test_only_the_deputy_or_the_station_reads_it() -> None:
    services, ticket, chat = await _world()
    colleague = LI if ticket.deputy_code == WANG.code else WANG  # same station: may read, no phone
    reply = await say(chat, colleague.openid, f"详情 #{ticket.number}")
    assert "第1句" in reply and "13812345678" not in reply
    # another station's deputy: not found, as for #1003
    assert await say(chat, ZHOU_OPENID, f"详情 #{ticket.number}") == services.texts.get(
        "deputy_ticket_not_found", number=ticket.number)
    assert await say(chat, ZHOU_OPENID, "下一页") == services.texts.get("detail_no_paging")
    # a citizen's 详情 is not a deputy command
    assert "第1句" not in (await say(chat, CITIZEN, f"详情 #{ticket.number}") or "")


def test_signed_links_are_for_one_deputy_and_expire() -> None:
    services = make_services()
    settings, now = services.settings, services.clock.now()
    url = ticket_links.ticket_link(settings, 1003, "D001", now)
    query = dict(part.split("=") for part in url.split("?")[1].split("&"))
    assert ticket_links.check(settings, 1003, "D001", query["e"], query["s"], now) == "ok"
    assert ticket_links.check(settings, 1003, "D002", query["e"], query["s"], now) == "forged"  # another deputy
    assert ticket_links.check(settings, 1004, "D001", query["e"], query["s"], now) == "forged"
    assert ticket_links.check(settings, 1003, "D001", str(int(query["e"]) + 86400), query["s"], now) == "forged"
    later = now + timedelta(days=settings.ticket_link_days, seconds=1)
    assert ticket_links.check(settings, 1003, "D001", query["e"], query["s"], later) == "expired"
