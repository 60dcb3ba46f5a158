"""The whole citizen chat through the chat routers (Dispatcher.handle), on in-memory stores, a fixed clock and a
scripted NLU: reports, QR binding, attachments, cancel/expiry, digressions, scope, my tickets,
rating."""
from __future__ import annotations

import itertools
from datetime import datetime, time, timedelta
from typing import Any

import pytest

import storage.kv
from bot.bootstrap import build_services
from bot.core.inbound import Inbound
from bot.core.keys import scene
from bot.core.parse import ParseResult
from bot.core.people import Deputy, DutyShift, Station, StationKind
from bot.core.tickets import Attachment, Ticket, TicketStatus
from bot.settings import Settings
from bot.texts import Texts
from fakes import RecordingGateway, stale_saves
from handlers import delivery, deputies, tickets
from handlers.chat import ROUTERS
from handlers.read_ahead import ReadAheadKV
from handlers.chat.router import Dispatcher
from storage.kv import MemoryKeyValueStore
from storage.memory import MemoryUnitOfWorkFactory

NOW = datetime(2026, 3, 2, 10, 0)  # a Monday morning
CITIZEN = "oCitizenAAAA0001"
OTHER = "oCitizenBBBB0002"
DEPUTY_OPENID = "oDeputyWang00001"


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


class FakeTime:
    """Stands in for the `time` module inside storage.kv only, so TTLs run on the test's clock."""

    def __init__(self) -> None:
        self.value = 1000.0

    def monotonic(self) -> float:
        return self.value


class FakeNLU:
    """Scripted parse results in the Rasa /model/parse shape (+ category); unknown texts fall back."""

    def __init__(self) -> None:
        self.script: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []

    def on(
        self,
        text: str,
        intent: str,
        *,
        confidence: float = 0.95,
        category: str | None = None,
        places: tuple[str, ...] = (),
        ranking: tuple[str, ...] = (),
        ticket: str = "",
    ) -> None:
        entities = []
        for place in places:
            start = text.find(place)
            entities.append({"entity": "place", "value": place, "start": start, "end": start + len(place), "confidence": 0.99})
        if ticket:
            start = text.find(ticket)
            entities.append({"entity": "ticket", "value": ticket, "start": start, "end": start + len(ticket), "confidence": 0.99})
        names = (intent, *ranking)
        self.script[text] = {
            "text": text,
            "intent": {"name": intent, "confidence": confidence},
            "entities": entities,
            "intent_ranking": [{"name": n, "confidence": round(confidence / (i + 1), 3)} for i, n in enumerate(names)],
            "category": {"name": category or "其他", "confidence": 0.9 if category else 0.3},
            "category_ranking": [],
        }

    async def parse(self, text: str) -> ParseResult:
        self.calls.append(text)
        if text in self.script:
            return ParseResult.from_dict(self.script[text])
        return ParseResult.from_dict({
            "text": text,
            "intent": {"name": "nlu_fallback", "confidence": 0.3},
            "entities": [],
            "intent_ranking": [{"name": "out_of_scope", "confidence": 0.3}],
            "category": {"name": "其他", "confidence": 0.2},
            "category_ranking": [],
        })


class World:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.fake_time = FakeTime()
        monkeypatch.setattr(storage.kv, "time", self.fake_time)
        self.clock = FixedClock(NOW)
        self.uow = MemoryUnitOfWorkFactory(self.clock)
        self.kv = MemoryKeyValueStore()
        self.nlu = FakeNLU()
        self.kicks = 0
        self.texts = Texts.load()
        self.services = build_services(Settings(), uow=self.uow, kv=self.kv, nlu=self.nlu, clock=self.clock,
                                       texts=self.texts, kick_delivery=self._kick)
        self.conversation = Dispatcher(self.services, ROUTERS)
        self._ids = itertools.count(1)

    def advance(self, seconds: float) -> None:
        """Time passes for the clock and for the key-value store's TTLs alike."""
        self.fake_time.value += seconds
        self.clock.current += timedelta(seconds=seconds)

    def _kick(self) -> None:
        self.kicks += 1

    async def seed(self) -> None:
        async with self.uow() as uow:
            for station in (
                Station("S01", "松陵街道代表之家", StationKind.HOME, "松陵街道", places=("永康社区",)),
                Station("S02", "平望镇代表之家", StationKind.HOME, "平望镇", places=("庙头村",)),
                Station("S03", "盛泽镇法律调解代表联络站", StationKind.STATION, "盛泽镇", specialties=("政法",)),
            ):
                await uow.stations.upsert(station)
            for deputy in (
                Deputy("D001", "王明", "区", "S01", openid=DEPUTY_OPENID),
                Deputy("D002", "李华", "镇", "S02", openid="oDeputyLi0000002"),
                Deputy("D003", "赵兰", "区", "S03"),
            ):
                await uow.deputies.upsert(deputy)
                if deputy.openid:
                    await uow.deputies.bind(deputy.code, deputy.openid)
                for day in range(1, 8):
                    await uow.duty.upsert(DutyShift(deputy.station_code, deputy.code, day, time(0, 0), time(23, 59)))
            await uow.commit()

    async def send(self, openid: str = CITIZEN, kind: str = "text", **fields: Any) -> str | None:
        n = next(self._ids)
        msg_id = "" if kind == "event" else str(10_000 + n)
        return await self.conversation.handle(Inbound(openid=openid, kind=kind, created_at=1_700_000_000 + n, msg_id=msg_id, **fields))

    async def say(self, text: str, openid: str = CITIZEN) -> str:
        reply = await self.send(openid, text=text)
        assert reply is not None
        return reply

    async def form(self, openid: str = CITIZEN) -> str | None:
        return await self.kv.get(scene(openid))

    async def tickets(self, openid: str = CITIZEN) -> list[Ticket]:
        async with self.uow() as uow:
            return sorted(await uow.tickets.list_for_citizen(openid), key=lambda t: t.number)

    async def all_tickets(self) -> list[Ticket]:
        async with self.uow() as uow:
            return [t for t in [await uow.tickets.get(n) for n in range(1001, 1020)] if t]

    async def outbox_to(self, openid: str) -> list[str]:
        async with self.uow() as uow:
            return [m.text for m in await uow.outbox.list(("pending", "held", "failed", "sent")) if m.recipient_openid == openid]

    def t(self, key: str, **params: Any) -> str:
        return self.texts.get(key, **params)


@pytest.fixture
async def world(monkeypatch: pytest.MonkeyPatch) -> World:
    w = World(monkeypatch)
    await w.seed()
    w.nlu.on("我们村口的路灯坏了一个星期了", "report_issue", category="城乡建设")
    w.nlu.on("松陵街道永康社区门口的路灯坏了", "report_issue", category="城乡建设", places=("松陵街道", "永康社区"))
    return w


async def file_report(w: World, openid: str = CITIZEN, where: str = "平望镇 庙头村") -> Ticket:
    await w.say("我们村口的路灯坏了一个星期了", openid)
    await w.say(where, openid)
    await w.say("没有", openid)
    await w.say("跳过", openid)
    reply = await w.say("是", openid)
    filed = (await w.tickets(openid))[-1]
    assert f"#{filed.number}" in reply
    return filed


def told_filed(w: World, number: int, station: str = "平望镇代表之家", deputy: str = "李华",
               reach: str = "reach_later") -> str:
    """The filing reply; `reach`: what it says of the deputy's notice (no window, no template: later)."""
    return w.t("form_submitted_assigned", number=number, station=station, deputy=deputy,
               reach=w.t(reach, who=w.t("reach_who_named", name=deputy)))


# --- the report ------------------------------------------------------------------------------
async def test_a_full_report_in_one_message_and_a_few_questions(world: World) -> None:
    w = world
    reply = await w.say("我们村口的路灯坏了一个星期了")
    assert w.t("form_ask_where") in reply
    assert w.t("form_ask_details") in await w.say("平望镇 庙头村")
    assert w.t("form_ask_phone") in await w.say("晚上路上很黑，老人走路不方便")
    summary = await w.say("13912345678")  # one answer: the number, for the deputy
    for line in (w.t("form_sum_what", summary="我们村口的路灯坏了一个星期了"), w.t("form_sum_where", place="平望镇 庙头村"),
                 w.t("form_sum_details", details="晚上路上很黑，老人走路不方便"),
                 w.t("form_sum_phone_shared", phone="13912345678"), w.t("form_sum_category", category="城乡建设")):
        assert line in summary.splitlines()
    assert await w.tickets() == []  # nothing is filed before the citizen confirms

    done = await w.say("确认")
    [ticket] = await w.tickets()
    assert done == told_filed(w, ticket.number)
    assert "已转给值班代表" in done and "受理" not in done
    assert (ticket.category, ticket.place, ticket.phone, ticket.share_contact) == ("城乡建设", "平望镇 庙头村", "13912345678", True)
    assert ticket.details == "晚上路上很黑，老人走路不方便"
    assert (ticket.station_code, ticket.deputy_code, ticket.status) == ("S02", "D002", TicketStatus.ASSIGNED)
    assert await w.form() is None
    assert any("13912345678" in text for text in await w.outbox_to("oDeputyLi0000002"))


async def test_a_place_named_in_the_first_message_is_not_asked_again(world: World) -> None:
    reply = await world.say("松陵街道永康社区门口的路灯坏了")
    assert world.t("form_ask_details") in reply and world.t("form_ask_where") not in reply
    await world.say("没有")
    await world.say("不留")
    await world.say("对")
    [ticket] = await world.tickets()
    assert (ticket.place, ticket.station_code) == ("松陵街道永康社区", "S01")  # as the citizen wrote it


async def test_a_scanned_qr_code_routes_and_where_is_still_asked(world: World) -> None:
    w = world
    welcome = await w.send(kind="event", event="subscribe", scene="station:S03")
    assert w.t("citizen_welcome") in welcome and "盛泽镇法律调解代表联络站" in welcome
    reply = await w.say("我们村口的路灯坏了一个星期了")
    assert w.t("form_ask_where") in reply  # a station without places listed: the plain question
    await w.say("平望镇 庙头村")
    await w.say("没有")
    summary = await w.say("跳过")
    assert w.t("form_sum_where", place="平望镇 庙头村") in summary
    await w.say("是")
    [ticket] = await w.tickets()
    assert (ticket.place, ticket.station_code, ticket.deputy_code) == ("平望镇 庙头村", "S03", "D003")


async def test_the_where_question_offers_the_scanned_stations_places(world: World) -> None:
    w = world
    await w.send(kind="event", event="scan", scene="station:S01")
    reply = await w.say("我们村口的路灯坏了一个星期了")
    assert w.t("form_ask_where_station", station="松陵街道代表之家", examples="永康社区") in reply
    assert w.t("form_ask_details") in await w.say("永康社区5幢")
    await w.say("没有")
    await w.say("不留")
    assert await w.say("是") == told_filed(w, 1001, "松陵街道代表之家", "王明")
    [ticket] = await w.tickets()
    assert (ticket.place, ticket.station_code) == ("永康社区5幢", "S01")


async def test_a_scan_after_an_earlier_report_binds_the_next_one(world: World) -> None:
    """A citizen with no station is remembered as such; scanning a code must not be shadowed by that."""
    w = world
    assert w.t("form_ask_where") in await w.say("我们村口的路灯坏了一个星期了")
    await w.say("取消")
    await w.send(kind="event", event="scan", scene="station:S01")
    assert w.t("form_ask_where_station", station="松陵街道代表之家", examples="永康社区") in await w.say(
        "我们村口的路灯坏了一个星期了")


async def test_scanning_a_deputy_code_binds_their_station(world: World) -> None:
    w = world
    assert await w.send(kind="event", event="scan", scene="deputy:D002") == w.t("citizen_scan_bound", station="平望镇代表之家")
    async with w.uow() as uow:
        citizen = await uow.citizens.get(CITIZEN)
    assert citizen is not None and citizen.station_code == "S02"
    assert await w.send(kind="event", event="scan", scene="station:NOPE") == w.t("citizen_scan_unknown")
    async with w.uow() as uow:
        assert (await uow.citizens.get(CITIZEN)).station_code == "S02"  # an unknown code changes nothing


async def test_photos_voice_and_location_are_attached(world: World) -> None:
    w = world
    reply = await w.send(kind="image", media_id="IMG1", pic_url="http://mmbiz/1.jpg")
    assert w.t("form_got_image", count=1) in reply and w.t("form_ask_what") in reply
    w.nlu.on("小区门口下水道堵了，臭得很", "report_issue", category="城乡建设")
    assert w.t("form_ask_where") in await w.say("小区门口下水道堵了，臭得很")
    reply = await w.send(kind="location", latitude=31.16, longitude=120.64, label="江苏省苏州市吴江区松陵街道永康路88号")
    assert w.t("form_ask_details") in reply
    await w.send(kind="image", media_id="IMG2", pic_url="http://mmbiz/2.jpg")
    reply = await w.send(kind="voice", media_id="VOICE1", text="已经堵了三天了，一下雨就往外冒")
    assert w.t("form_ask_phone") in reply
    summary = await w.say("跳过")
    assert w.t("form_sum_attachments", items="照片2张、位置1个、语音1条") in summary
    await w.say("是")

    [ticket] = await w.tickets()
    assert ticket.place == "江苏省苏州市吴江区松陵街道永康路88号" and ticket.station_code == "S01"
    assert ticket.details == "已经堵了三天了，一下雨就往外冒"
    assert [(a.kind, a.media_id) for a in ticket.attachments] == [
        ("image", "IMG1"), ("location", ""), ("image", "IMG2"), ("voice", "VOICE1")]
    assert ticket.attachments[0] == Attachment("image", "IMG1", "http://mmbiz/1.jpg")


async def test_a_voice_message_starts_a_report_with_its_recognised_text(world: World) -> None:
    w = world
    w.nlu.on("我们小区的电梯坏了没人修", "nlu_fallback", confidence=0.4, ranking=("report_issue",))
    reply = await w.send(kind="voice", media_id="V1", text="我们小区的电梯坏了没人修")
    assert w.t("form_ask_where") in reply
    w.nlu.on("你好", "greet")
    await w.say("取消")
    assert w.t("citizen_help") == await w.send(kind="voice", media_id="V2", text="你好")
    assert await w.form() is None


async def test_a_phone_for_staff_only_is_kept_from_the_deputy(world: World) -> None:
    w = world
    await w.say("我们村口的路灯坏了一个星期了")
    await w.say("平望镇 庙头村")
    await w.say("没有")
    assert w.t("form_phone_invalid") == await w.say("12345")
    summary = await w.say("139-1234-5678 只给工作人员")
    assert w.t("form_sum_phone_private", phone="13912345678") in summary
    await w.say("是")
    [ticket] = await w.tickets()
    assert (ticket.phone, ticket.share_contact) == ("13912345678", False)
    assert not any("13912345678" in text for text in await w.outbox_to("oDeputyLi0000002"))


async def test_changing_an_answer_at_the_summary(world: World) -> None:
    w = world
    await w.say("我们村口的路灯坏了一个星期了")
    await w.say("平望镇 庙头村")
    await w.say("没有")
    await w.say("跳过")
    assert w.t("form_ask_edit") == await w.say("修改")
    assert w.t("form_ask_where") in await w.say("地点")
    summary = await w.say("松陵街道 永康社区")
    assert "松陵街道 永康社区" in summary and w.t("form_ask_confirm").split("：")[0] in summary
    await w.say("是")
    [ticket] = await w.tickets()
    assert ticket.station_code == "S01"


@pytest.mark.parametrize("answers", [[], ["平望镇 庙头村"], ["平望镇 庙头村", "没有"],
                                     ["平望镇 庙头村", "没有", "13912345678"],
                                     ["平望镇 庙头村", "没有", "13912345678 只给工作人员"],
                                     ["平望镇 庙头村", "没有", "跳过", "修改"]])
async def test_cancel_at_any_step_files_nothing(world: World, answers: list[str]) -> None:
    await world.say("我们村口的路灯坏了一个星期了")
    for answer in answers:
        await world.say(answer)
    assert await world.say("取消") == world.t("form_cancelled")
    assert await world.form() is None
    assert "#1001" not in await world.say("是")
    assert await world.all_tickets() == []


async def test_an_abandoned_form_expires_and_files_nothing(world: World) -> None:
    w = world
    ttl = w.services.settings.form_ttl
    await w.say("我们村口的路灯坏了一个星期了")
    w.advance(ttl - 1)
    assert w.t("form_ask_details") in await w.say("平望镇 庙头村")  # still open: each answer renews it
    w.advance(ttl - 1)
    await w.say("没有")
    await w.say("跳过")
    w.advance(ttl + 1)
    assert await w.say("是") == w.t("form_expired", minutes=ttl // 60)
    assert await w.form() is None and await w.all_tickets() == []
    assert await w.say("是") == w.t("citizen_help")  # said once, then back to normal


async def test_a_failed_submit_keeps_the_form_for_another_try(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    real = tickets.file_in

    async def broken(*args: Any) -> Ticket:
        raise RuntimeError("database down")

    monkeypatch.setattr(tickets, "file_in", broken)
    await w.say("我们村口的路灯坏了一个星期了")
    await w.say("平望镇 庙头村")
    await w.say("没有")
    await w.say("跳过")
    assert await w.say("是") == w.t("form_submit_failed")
    assert await w.form() is not None
    monkeypatch.setattr(tickets, "file_in", real)
    assert "#1001" in await w.say("是")


# --- digressions mid-form ----------------------------------------------------------------------
async def test_questions_mid_form_are_answered_and_the_form_stays_open(world: World) -> None:
    w = world
    other = await file_report(w, OTHER)
    mine = await file_report(w)
    await w.say("我们村口的路灯坏了一个星期了")
    await w.say("平望镇 庙头村")
    reminder = w.t("form_reminder", question=w.t("form_ask_details"))

    reply = await w.say("我的诉求")
    assert f"#{mine.number}" in reply and f"#{other.number}" not in reply and reminder in reply
    reply = await w.say(f"#{other.number}")
    assert w.t("citizen_ticket_not_found", number=other.number) in reply and reminder in reply

    w.nlu.on("不好了家里着火了", "emergency", confidence=0.9)
    reply = await w.say("不好了家里着火了")
    assert "119" in reply and reminder in reply

    # a free-text answer is never lost to the classifier
    w.nlu.on("这事我以前也找过信访办", "petition", confidence=0.9)
    assert w.t("form_ask_phone") in await w.say("这事我以前也找过信访办")

    # where the text does not answer the question, a clear other intent is answered instead
    w.nlu.on("你们这是干什么的", "ask_scope", confidence=0.9)
    reply = await w.say("你们这是干什么的")
    assert w.t("citizen_help") in reply and w.t("form_reminder", question=w.t("form_ask_phone")) in reply
    await w.say("跳过")
    assert "#" in await w.say("是")
    assert len(await w.tickets()) == 2


async def test_a_report_that_may_be_an_emergency_starts_with_the_hotlines(world: World) -> None:
    from handlers.chat.report import EMERGENCY_HINT_MIN

    w = world
    w.nlu.on("孩子放学一直没回家，急", "report_issue", ranking=("emergency",))
    reply = await w.say("孩子放学一直没回家，急")
    assert reply.startswith(w.t("form_emergency_hint")) and w.t("form_started") in reply
    assert await w.form() is not None  # the report is still taken down
    await w.say("取消")

    w.nlu.on("村口的路灯坏了", "report_issue", ranking=("emergency",))
    w.nlu.script["村口的路灯坏了"]["intent_ranking"][1]["confidence"] = EMERGENCY_HINT_MIN / 2
    reply = await w.say("村口的路灯坏了")
    assert w.t("form_emergency_hint") not in reply and reply.startswith(w.t("form_started"))


async def test_at_the_summary_anything_else_gets_the_same_short_instruction(world: World) -> None:
    w = world
    await walk_to_confirm(w)
    w.nlu.on("你们这是干什么的", "ask_scope", confidence=0.9)
    w.nlu.on("明天天气怎么样", "out_of_scope", confidence=0.9)
    for text in ("跳过", "你们这是干什么的", "明天天气怎么样", "嗯……再想想"):
        assert await w.say(text) == w.t("form_confirm_again"), text
    assert await w.tickets() == []
    assert "#1001" in await w.say("是")


async def test_the_filing_reply_is_the_only_message_about_the_filing(world: World) -> None:
    w = world
    ticket = await file_report(w)
    assert await w.outbox_to(CITIZEN) == []  # no push repeating what the reply said
    assert len(await w.outbox_to("oDeputyLi0000002")) == 1
    await w.say(f"受理 #{ticket.number}", "oDeputyLi0000002")
    [accepted] = await w.outbox_to(CITIZEN)
    assert "接手" in accepted  # 受理 is the deputy's word, said when they accept


async def test_unsupported_messages_mid_form(world: World) -> None:
    await world.say("我们村口的路灯坏了一个星期了")
    reply = await world.send(kind="video", media_id="VID")
    assert world.t("form_unsupported_kind") in reply and world.t("form_ask_where") in reply


# --- outside the form ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "intent", "key"),
    [("我要上访，法院判得不公", "petition", "citizen_petition"),
     ("有人在打架，快来人", "emergency", "citizen_emergency"),
     ("明天天气怎么样", "out_of_scope", "citizen_out_of_scope"),
     ("你好", "greet", "citizen_help"),
     ("这个平台能干嘛", "ask_scope", "citizen_help"),
     ("谢谢", "thanks", "citizen_thanks_reply")],
)
async def test_intents_that_need_no_form(world: World, text: str, intent: str, key: str) -> None:
    world.nlu.on(text, intent)
    assert await world.say(text) == world.t(key)
    assert await world.form() is None


async def test_unclear_text_gets_help(world: World) -> None:
    assert await world.say("嗯嗯") == world.t("citizen_help")
    assert await world.form() is None


async def test_a_legislative_opinion_is_recorded_as_a_report(world: World) -> None:
    w = world
    text = "关于物业管理条例草案，我建议增加业主委员会的监督条款"
    w.nlu.on(text, "legislative_opinion")
    reply = await w.say(text)
    assert w.t("form_legislative_intro") in reply and w.t("form_ask_where") in reply
    await w.say("盛泽镇")
    await w.say("没有")
    await w.say("跳过")
    await w.say("是")
    [ticket] = await w.tickets()
    assert (ticket.category, ticket.station_code) == ("政法", "S03")


async def test_my_tickets_and_a_timeline_of_my_own_ticket_only(world: World) -> None:
    w = world
    assert await w.say("我的诉求") == w.t("citizen_no_tickets")
    mine = await file_report(w)
    other = await file_report(w, OTHER)
    listing = await w.say("我的诉求")
    assert f"#{mine.number}" in listing and "已转给代表" in listing and f"#{other.number}" not in listing
    timeline = await w.say(f"编号{mine.number}")
    assert "平望镇 庙头村" in timeline and "转给李华代表" in timeline and "提交了诉求" in timeline
    assert await w.say(f"#{other.number}") == w.t("citizen_ticket_not_found", number=other.number)
    assert await w.say("#9999") == w.t("citizen_ticket_not_found", number=9999)
    w.nlu.on("我反映的事情怎么样了", "check_status")
    assert f"#{mine.number}" in await w.say("我反映的事情怎么样了")


async def test_rating_a_resolved_ticket(world: World) -> None:
    w = world
    ticket = await file_report(w, where="松陵街道 永康社区")
    assert ticket.deputy_code == "D001"
    # before it is resolved, "5" is no rating
    assert await w.say("5") == w.t("citizen_help")
    await w.say(f"办结 #{ticket.number} 路灯已经换好了", DEPUTY_OPENID)
    timeline = await w.say(f"#{ticket.number}")
    assert "路灯已经换好了" in timeline and w.t("citizen_timeline_rate_hint") in timeline

    assert await w.say("5 很及时，谢谢代表") == w.t("citizen_rate_thanks_comment", score=5)
    [rated] = await w.tickets()
    assert (rated.rating, rated.rating_comment) == (5, "很及时，谢谢代表")  # as written
    assert any("5分" in text and "很及时，谢谢代表" in text for text in await w.outbox_to(DEPUTY_OPENID))
    # rated once: a number sent afterwards is taken as that rating, not as an off-topic message
    already = w.t("citizen_rate_already", number=ticket.number, score=5)
    assert await w.say("4") == already
    w.nlu.on("很满意谢谢", "rate")
    assert await w.say("很满意谢谢") == already
    assert (await w.tickets())[0].rating == 5


async def test_a_citizen_answers_the_deputy_on_their_own_ticket(world: World) -> None:
    w = world
    ticket = await file_report(w, where="松陵街道 永康社区")
    other = await file_report(w, OTHER)
    await w.say(f"#{ticket.number} 请问是哪根路灯？", DEPUTY_OPENID)
    assert await w.say(f"#{ticket.number} 村委会门口第三根") == w.t("citizen_note_sent", number=ticket.number,
                                                                            reach=w.t("reach_sent", who=w.t("reach_who_note")))
    assert any("村委会门口第三根" in text for text in await w.outbox_to(DEPUTY_OPENID))
    assert "您补充：村委会门口第三根" in await w.say(f"#{ticket.number}")
    assert await w.say(f"#{other.number} 我也想说两句") == w.t("citizen_ticket_not_found", number=other.number)
    async with w.uow() as uow:
        assert [e.kind for e in (await uow.tickets.get(other.number)).timeline if e.kind == "citizen_note"] == []
    await w.say(f"办结 #{ticket.number} 已修好", DEPUTY_OPENID)
    assert await w.say(f"#{ticket.number} 谢谢") == w.t("citizen_note_closed", number=ticket.number)


async def test_a_note_too_long_for_one_message_is_refused_whole(world: World) -> None:
    from handlers.notify import RELAY_MAX_CHARS

    w = world
    ticket = await file_report(w)
    sent_before = await w.outbox_to(DEPUTY_OPENID)
    too_long = "灯杆在村委会门口往东第三根。" * (RELAY_MAX_CHARS // 14 + 1)
    assert await w.say(f"#{ticket.number} {too_long}") == w.t(
        "relay_too_long", number=ticket.number, count=len(too_long), limit=RELAY_MAX_CHARS)
    assert await w.outbox_to(DEPUTY_OPENID) == sent_before
    async with w.uow() as uow:
        assert [e for e in (await uow.tickets.get(ticket.number)).timeline if e.kind == "citizen_note"] == []


async def test_rating_words(world: World) -> None:
    w = world
    ticket = await file_report(w, where="松陵街道 永康社区")
    await w.say(f"办结 #{ticket.number} 已处理", DEPUTY_OPENID)
    assert await w.say("满意") == w.t("citizen_rate_thanks", score=4)
    assert (await w.tickets())[0].rating == 4


# --- deputies, events, other kinds ---------------------------------------------------------------
async def test_a_deputy_binds_and_their_other_messages_are_a_citizens(world: World) -> None:
    w = world
    code = await deputies.create_bind_code(w.services, "D003")
    reply = await w.say(f"绑定 {code}", "oDeputyZhao00003")
    assert "赵兰" in reply
    async with w.uow() as uow:
        assert (await uow.deputies.by_openid("oDeputyZhao00003")).code == "D003"
    assert await w.say("我的工单", "oDeputyZhao00003") == w.t("deputy_my_tickets_empty")
    w.nlu.on("你好", "greet")
    assert await w.say("你好", "oDeputyZhao00003") == w.t("citizen_help")
    # a citizen asking to "bind" a phone number is not a deputy binding
    assert w.t("bind_code_invalid") != await w.say("绑定手机号")


async def test_events(world: World) -> None:
    w = world
    assert await w.send(kind="event", event="subscribe") == w.t("citizen_welcome")
    assert await w.send(kind="event", event="view", event_key="https://example.org") is None
    assert await w.send(kind="event", event="location") is None
    assert await w.send(kind="event", event="click", event_key="help") == w.t("citizen_help")
    assert await w.send(kind="event", event="click", event_key="my_tickets") == w.t("citizen_no_tickets")
    assert w.t("form_ask_what") in await w.send(kind="event", event="click", event_key="report")
    assert await w.send(kind="event", event="click", event_key="report") == w.t("form_reminder", question=w.t("form_ask_what"))
    assert await w.send(kind="event", event="unsubscribe") is None
    async with w.uow() as uow:
        assert (await uow.citizens.get(CITIZEN)).subscribed is False
    assert await w.form() is None


async def test_unknown_message_kinds_get_a_polite_reply(world: World) -> None:
    for kind in ("video", "shortvideo", "link", "unknown"):
        assert await world.send(kind=kind) == world.t("citizen_unsupported_kind")


async def test_held_messages_are_released_when_the_citizen_writes(world: World) -> None:
    w = world
    async with w.uow() as uow:
        from bot.core.outbound import OutboxMessage

        held = await uow.outbox.add(OutboxMessage(recipient_openid=CITIZEN, text="旧消息"))
        await uow.commit()
    await delivery.deliver_due(w.services, RecordingGateway())  # no window yet, no template: held
    await w.say("我的诉求")
    async with w.uow() as uow:
        [message] = [m for m in await uow.outbox.list(("pending", "held")) if m.id == held.id]
    assert message.status == "pending"
    assert (await delivery.window_state(w.services, CITIZEN)) == (NOW, 0)
    assert w.kicks >= 1


# --- deputy-like words from citizens (B3) --------------------------------------------------------
async def test_a_form_answer_that_starts_like_a_deputy_command_is_kept(world: World) -> None:
    w = world
    await w.say("我们村口的路灯坏了一个星期了")
    assert w.t("form_ask_details") in await w.say("平望镇 庙头村")
    reply = await w.say("受理3天了还没人管")
    assert reply != w.t("deputy_not_bound") and w.t("form_ask_phone") in reply
    assert "受理3天了还没人管" in await w.say("跳过")  # the confirm paragraph
    await w.say("是")
    [ticket] = await w.tickets()
    assert ticket.details == "受理3天了还没人管"


# --- after the commit, the citizen is told the report is filed (B8) ----------------------------
class FailingKV(MemoryKeyValueStore):
    """A key-value store whose writes to some keys fail (Redis going away mid-request)."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: tuple[str, ...] = ()

    def _check(self, key: str) -> None:
        if key.startswith(self.broken) and self.broken:
            raise ConnectionError(f"store down writing {key}")

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        self._check(key)
        await super().set(key, value, ttl)

    async def delete(self, key: str) -> None:
        self._check(key)
        await super().delete(key)


async def walk_to_confirm(w: World) -> None:
    await w.say("我们村口的路灯坏了一个星期了")
    await w.say("平望镇 庙头村")
    await w.say("没有")
    assert w.t("form_ask_confirm").split("：")[0] in await w.say("跳过")


@pytest.mark.parametrize("broken", [("rr:",), ("scene:",), ("rr:", "scene:")])
async def test_a_filed_report_is_reported_filed_whatever_fails_after_the_commit(
    world: World, broken: tuple[str, ...]
) -> None:
    w = world
    kv = FailingKV()
    w.kv, w.services.kv = kv, ReadAheadKV(kv)
    await walk_to_confirm(w)
    kv.broken = broken
    reply = await w.say("是")
    [ticket] = await w.tickets()
    assert reply == told_filed(w, ticket.number)
    # a second 是 (the form may not have been cleared) files nothing new
    again = await w.say("是")
    assert len(await w.tickets()) == 1
    assert again in (told_filed(w, ticket.number), w.t("citizen_help"))


# --- concurrent changes (B7) ---------------------------------------------------------------------
async def test_a_citizen_note_and_a_rating_survive_one_concurrent_change(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world
    ticket = await file_report(w, where="松陵街道 永康社区")
    await w.say(f"受理 #{ticket.number}", DEPUTY_OPENID)
    stale_saves(monkeypatch, 1)
    assert await w.say(f"#{ticket.number} 村委会门口第三根") == w.t("citizen_note_sent", number=ticket.number,
                                                                            reach=w.t("reach_sent", who=w.t("reach_who_note")))
    [noted] = await w.tickets()
    assert [e.kind for e in noted.timeline].count("citizen_note") == 1
    assert sum("村委会门口第三根" in text for text in await w.outbox_to(DEPUTY_OPENID)) == 1

    await w.say(f"办结 #{ticket.number} 已修好", DEPUTY_OPENID)
    stale_saves(monkeypatch, 1)
    assert await w.say("5") == w.t("citizen_rate_thanks", score=5)
    [rated] = await w.tickets()
    assert rated.rating == 5 and [e.kind for e in rated.timeline].count("rated") == 1
    # a second conflict in a row is not hidden
    from bot.core.ports import ConcurrentUpdate
    from handlers import citizens

    another = await file_report(w)
    stale_saves(monkeypatch, 2)
    with pytest.raises(ConcurrentUpdate):
        await citizens.add_citizen_note(w.services, CITIZEN, another.number, "再补充一句")


async def test_a_rating_out_of_range_gets_its_own_text(world: World) -> None:
    from handlers import citizens

    w = world
    ticket = await file_report(w, where="松陵街道 永康社区")
    await w.say(f"办结 #{ticket.number} 已修好", DEPUTY_OPENID)
    assert await citizens.rate_ticket(w.services, CITIZEN, 7) == w.t("rate_out_of_range")
    assert (await w.tickets())[0].rating is None


async def test_the_timeline_date_format_comes_from_the_texts(world: World) -> None:
    w = world
    ticket = await file_report(w)
    w.texts._entries["citizen_when"] = "{month}/{day} {time}"  # type: ignore[attr-defined]
    try:
        assert "3/2 10:00 " in await w.say(f"#{ticket.number}")
    finally:
        w.texts._entries["citizen_when"] = Texts.load().raw("citizen_when")  # type: ignore[attr-defined]
