"""云直播: the live scene (join by QR / keyword, questions, photos, leaving, commands still
answered), the host's actions (merge, two hosts answering), answers to every asker, and the end
of a session (every unanswered and starred question a ticket, each asker told once)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.core.inbound import Inbound, InboundKind
from bot.core.live import LiveConflict, LiveSession, similar_questions
from fakes import CITIZEN, CITIZEN_2, FixedClock, make_services, outbox, seed
from handlers import live
from handlers.chat import ROUTERS
from handlers.chat.router import Dispatcher
from handlers.live import HostAction, LiveInvalid

START = datetime(2026, 12, 7, 10, 0)


@pytest.fixture
async def rig():
    clock = FixedClock(START)
    services = make_services(clock)
    await seed(services)
    session = await live.create_session(services, LiveSession(
        "LL-DC", "东村代表直播接待", "https://channels.weixin.qq.com/x", START - timedelta(minutes=5),
        START + timedelta(hours=2), ("D001",)))
    return services, clock, session, Dispatcher(services, ROUTERS)


class Chat:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self.d, self.n = dispatcher, 0

    async def text(self, openid: str, text: str) -> str | None:
        self.n += 1
        return await self.d.handle(Inbound(openid, InboundKind.TEXT, created_at=self.n, msg_id=str(self.n), text=text))

    async def scan(self, openid: str, scene: str, event: str = "scan") -> str | None:
        self.n += 1
        return await self.d.handle(Inbound(openid, InboundKind.EVENT, created_at=self.n, event=event,
                                           scene=scene.removeprefix("qrscene_"), event_key=scene))

    async def voice(self, openid: str, recognition: str) -> str | None:
        self.n += 1
        return await self.d.handle(Inbound(openid, InboundKind.VOICE, created_at=self.n, msg_id=str(self.n),
                                           media_id=f"v{self.n}", text=recognition))

    async def photo(self, openid: str) -> str | None:
        self.n += 1
        return await self.d.handle(Inbound(openid, InboundKind.IMAGE, created_at=self.n, msg_id=str(self.n),
                                           media_id=f"m{self.n}", pic_url="http://p/1.jpg"))


async def test_join_by_qr_and_keyword_ask_attach_and_leave(rig) -> None:
    services, clock, session, d = rig
    chat = Chat(d)
    assert session.keyword == f"直播{session.id}"
    joined = await chat.scan(CITIZEN, f"live:{session.id}")
    assert "东村代表直播接待" in joined and "退出直播" in joined
    assert "问题已收到" in await chat.text(CITIZEN, "村里的垃圾站什么时候建好？")
    assert "照片已附" in await chat.photo(CITIZEN)
    # 我的诉求 still works, with the scene's reminder
    reply = await chat.text(CITIZEN, "我的诉求")
    assert "直播「东村代表直播接待」提问中" in reply
    assert "退出直播" in await chat.text(CITIZEN, "退出直播")
    assert "问题已收到" not in (await chat.text(CITIZEN, "你好") or "")
    assert "东村代表直播接待" in await chat.text(CITIZEN_2, session.keyword)
    assert "问题已收到" in await chat.text(CITIZEN_2, "养老补贴怎么申请")
    qs = await live.questions(services, session.id)
    assert [(q.asker_openid, q.text, len(q.attachments)) for q in qs] == [
        (CITIZEN, "村里的垃圾站什么时候建好？", 1), (CITIZEN_2, "养老补贴怎么申请", 0)]


async def test_bad_input_in_the_scene(rig) -> None:
    services, clock, session, d = rig
    chat = Chat(d)
    await chat.text(CITIZEN, session.keyword)
    assert "太长" in await chat.text(CITIZEN, "路" * 301)
    assert "表情" in await chat.text(CITIZEN, "😀😀👍")
    assert "先发文字" in await chat.photo(CITIZEN)
    assert "没有听清" in await chat.voice(CITIZEN, "")
    assert await live.questions(services, session.id) == []
    assert "问题已收到" in await chat.voice(CITIZEN, "社区食堂什么时候开")
    assert [q.text for q in await live.questions(services, session.id)] == ["社区食堂什么时候开"]


async def test_joining_before_the_start_or_after_the_end_says_when(rig) -> None:
    services, clock, session, d = rig
    await live.create_session(services, LiveSession(
        "LL-DC", "下午场", "", START + timedelta(hours=4), START + timedelta(hours=5), keyword="下午场"))
    reply = await Chat(d).text(CITIZEN, "下午场")
    assert "还没有开始" in reply and "12月7日 14:00" in reply
    clock.set(START + timedelta(hours=3))
    reply = await Chat(d).scan(CITIZEN, f"qrscene_live:{session.id}", event="subscribe")
    assert "已经在12月7日 12:00结束" in reply


async def test_keyword_of_another_stations_live_session_is_refused(rig) -> None:
    services, clock, session, d = rig
    with pytest.raises(LiveInvalid) as refused:
        await live.create_session(services, LiveSession("SZ-HOME", "盛泽直播", "", START, START + timedelta(hours=1),
                                                        keyword=session.keyword))
    assert refused.value.errors[0].key == "live_keyword_taken"
    with pytest.raises(LiveInvalid) as refused:
        await live.create_session(services, LiveSession("SZ-HOME", "盛泽直播", "", START, START + timedelta(hours=1),
                                                        keyword="帮助"))
    assert refused.value.errors[0].key == "live_keyword_is_a_command"


async def test_a_keyword_sent_mid_report_form_is_an_answer_not_a_join(rig) -> None:
    services, clock, session, d = rig
    chat = Chat(d)
    await d.handle(Inbound(CITIZEN, InboundKind.EVENT, created_at=999, event="click", event_key="report"))
    reply = await chat.text(CITIZEN, session.keyword)
    assert "东村代表直播接待" not in reply


async def test_merged_answer_reaches_every_asker_once(rig) -> None:
    services, clock, session, d = rig
    a = await live.ask(services, session.id, CITIZEN, "垃圾站什么时候建好")
    b = await live.ask(services, session.id, CITIZEN_2, "垃圾站什么时候能建好？")
    assert similar_questions(b, [a, b]) and similar_questions(b, [a, b])[0][0] == a.id
    await live.act(services, session.id, b.id, HostAction("merge", "host", into=a.id))
    answered = await live.act(services, session.id, a.id, HostAction("answer", "host", text="年底前建好"))
    assert len(answered.askers) == 2
    pushes = [m for m in await outbox(services) if "年底前建好" in m.text]
    assert sorted(m.recipient_openid for m in pushes) == [CITIZEN, CITIZEN_2]
    with pytest.raises(LiveConflict) as second:
        await live.act(services, session.id, a.id, HostAction("answer", "host2", text="明年"))
    assert second.value.key == "live_already_answered" and second.value.params["by"] == "host"


async def test_action_on_another_sessions_question_is_refused(rig) -> None:
    services, clock, session, d = rig
    other = await live.create_session(services, LiveSession("SZ-HOME", "盛泽直播", "", START, START + timedelta(hours=1)))
    q = await live.ask(services, other.id, CITIZEN, "问题一")
    with pytest.raises(LookupError):
        await live.act(services, session.id, q.id, HostAction("star", "host"))


async def test_two_hosts_answering_at_once_the_second_is_told(rig) -> None:
    services, clock, session, d = rig
    q = await live.ask(services, session.id, CITIZEN, "路灯坏了")
    import asyncio
    results = await asyncio.gather(
        live.act(services, session.id, q.id, HostAction("answer", "甲", text="明天修")),
        live.act(services, session.id, q.id, HostAction("answer", "乙", text="后天修")),
        return_exceptions=True)
    assert sum(isinstance(r, LiveConflict) for r in results) == 1
    assert len([m for m in await outbox(services) if m.recipient_openid == CITIZEN]) == 1


async def test_end_files_unanswered_and_starred_and_tells_each_asker_once(rig) -> None:
    services, clock, session, d = rig
    q1 = await live.ask(services, session.id, CITIZEN, "垃圾站什么时候建好")
    q2 = await live.ask(services, session.id, CITIZEN, "村口路灯坏了")
    q3 = await live.ask(services, session.id, CITIZEN_2, "垃圾站何时建好啊")
    q4 = await live.ask(services, session.id, CITIZEN_2, "养老补贴")
    await live.act(services, session.id, q3.id, HostAction("merge", "host", into=q1.id))
    await live.act(services, session.id, q2.id, HostAction("answer", "host", text="已报修"))
    await live.act(services, session.id, q2.id, HostAction("star", "host"))
    await live.act(services, session.id, q4.id, HostAction("hide", "host", text="与本次主题无关"))
    clock.advance(hours=3)
    assert await live.end_due_sessions(services) == 1
    assert await live.end_due_sessions(services) == 0  # a second run files nothing
    await live.end_session(services, session.id, "host")  # nor does the host's late click
    qs = {q.id: q for q in await live.questions(services, session.id)}
    assert qs[q3.id].ticket_number is None
    numbers = {qs[i].ticket_number for i in (q1.id, q2.id, q4.id)}
    assert None not in numbers and len(numbers) == 3
    async with services.uow() as uow:
        ticket = await uow.tickets.get(qs[q1.id].ticket_number)
    assert ticket.station_code == "LL-DC" and ticket.citizen_openid == CITIZEN and "同问2人" in ticket.details
    notices = [m for m in await outbox(services) if "已转为工单" in m.text]
    assert sorted(m.recipient_openid for m in notices) == [CITIZEN, CITIZEN_2]
    mine = next(m for m in notices if m.recipient_openid == CITIZEN)
    assert f"#{qs[q1.id].ticket_number}" in mine.text and f"#{qs[q2.id].ticket_number}" in mine.text
    assert live.summary(list(qs.values())) == {"questions": 4, "askers": 2, "answered": 1, "merged": 1,
                                               "hidden": 1, "starred": 1, "tickets": 3}
    # the scene ends with the session
    reply = await Chat(d).text(CITIZEN_2, "还有一个问题")
    assert reply is None or "问题已收到" not in reply


async def test_answers_held_outside_the_window_are_coalesced_into_one_message(rig) -> None:
    from fakes import RecordingGateway
    from handlers import delivery

    services, clock, session, d = rig
    q1 = await live.ask(services, session.id, CITIZEN, "垃圾站什么时候建好")
    q2 = await live.ask(services, session.id, CITIZEN, "路灯什么时候修")
    await live.act(services, session.id, q1.id, HostAction("answer", "host", text="年底前"))
    gateway = RecordingGateway()
    await delivery.deliver_due(services, gateway)  # they never wrote to us here: no window, held
    await live.act(services, session.id, q2.id, HostAction("answer", "host", text="明天修"))
    await delivery.deliver_due(services, gateway)
    mine = [m for m in await outbox(services) if m.recipient_openid == CITIZEN]
    assert [m.status for m in mine] == ["held", "held"] and gateway.to(CITIZEN) == []
    assert await delivery.record_inbound(services, CITIZEN) == 1  # they write: one message, both answers
    await delivery.deliver_due(services, gateway)
    sent = gateway.to(CITIZEN)
    assert len(sent) == 1 and "年底前" in sent[0].text and "明天修" in sent[0].text
    async with services.uow() as uow:
        joined = [m for m in await uow.outbox.list(("dropped",)) if m.recipient_openid == CITIZEN]
    assert len(joined) == 1 and joined[0].last_error == f"joined into outbox {mine[0].id}"


async def test_every_asker_of_a_merged_question_follows_its_ticket(rig) -> None:
    """The first asker files the ticket; the others follow it: told its number with the filer, see it in
    我的诉求 and by「#编号」 (without the filer's own notes), and get the deputy's news; a stranger does not."""
    from bot.core.live import QuestionState
    from handlers import citizens
    from handlers.deputies import handle_deputy_message
    from handlers.live_followers import STATUS_OF

    services, clock, session, d = rig
    assert all(f"live_follow_{key}" in services.texts for key in STATUS_OF.values())
    a = await live.ask(services, session.id, CITIZEN, "垃圾站什么时候建好")
    b = await live.ask(services, session.id, CITIZEN_2, "垃圾站什么时候能建好？")
    await live.act(services, session.id, b.id, HostAction("merge", "host", into=a.id))
    await live.end_session(services, session.id, "host")  # at 10:00 on Monday: 东村's deputies are on duty
    qs = {q.id: q for q in await live.questions(services, session.id)}
    number = qs[a.id].ticket_number
    assert qs[b.id].state == QuestionState.MERGED and qs[b.id].ticket_number is None
    notices = [m for m in await outbox(services) if "已转为工单" in m.text]
    assert sorted(m.recipient_openid for m in notices) == [CITIZEN, CITIZEN_2]
    assert all(f"#{number}" in m.text for m in notices)
    async with services.uow() as uow:
        ticket = await uow.tickets.get(number)
        assert ticket.citizen_openid == CITIZEN and list(await uow.live.followers(number)) == [CITIZEN_2]
        deputy = await uow.deputies.get(ticket.deputy_code)
    assert f"#{number}" in await citizens.my_tickets_text(services, CITIZEN_2)
    assert f"#{number}" not in await citizens.my_tickets_text(services, "oStranger")

    await citizens.add_citizen_note(services, CITIZEN, number, "我家电话13912345678，随时联系")
    refused = await citizens.add_citizen_note(services, CITIZEN_2, number, "我也要补充")
    assert f"#{number}" in refused and "我也要补充" not in await citizens.ticket_timeline_text(services, CITIZEN, number)
    before = len(await outbox(services))
    await handle_deputy_message(services, deputy, f"#{number} 下周开工，月底建好")
    news = (await outbox(services))[before:]
    to_follower = [m for m in news if m.recipient_openid == CITIZEN_2]
    assert len(to_follower) == 1 and "下周开工" in to_follower[0].text and "也问过" in to_follower[0].text
    assert any(m.recipient_openid == CITIZEN and "下周开工" in m.text for m in news)
    assert not any("13912345678" in m.text for m in to_follower)
    await handle_deputy_message(services, deputy, f"办结 #{number} 已经建好")
    resolved = [m for m in (await outbox(services))[before:] if m.recipient_openid == CITIZEN_2 and "已办结" in m.text]
    assert len(resolved) == 1 and "已经建好" in resolved[0].text and "打个分" not in resolved[0].text

    timeline = await citizens.ticket_timeline_text(services, CITIZEN_2, number)
    assert "下周开工" in timeline and "13912345678" not in timeline
    assert "13912345678" in await citizens.ticket_timeline_text(services, CITIZEN, number)
    assert "下周开工" not in await citizens.ticket_timeline_text(services, "oStranger", number)
