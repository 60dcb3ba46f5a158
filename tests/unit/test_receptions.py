"""Reception days: the date words, the rules, and the schedule answer citizens get in chat."""
from __future__ import annotations

from datetime import date, time

import pytest

from bot.core.inbound import Inbound, InboundKind
from bot.core.parse import ParseResult
from bot.core.receptions import DateSpan, Reception, ReceptionInvalid, date_span
from fakes import CITIZEN, MONDAY_10, FixedClock, make_services, seed
from handlers import citizens, receptions
from handlers.chat import ROUTERS
from handlers.chat.router import Dispatcher

TODAY = MONDAY_10.date()  # Monday 2026-12-07


@pytest.mark.parametrize(("text", "first", "last"), [
    ("今天有接待吗", date(2026, 12, 7), date(2026, 12, 7)),
    ("明天有接待吗", date(2026, 12, 8), date(2026, 12, 8)),
    ("后天呢", date(2026, 12, 9), date(2026, 12, 9)),
    ("这周哪个代表接待", date(2026, 12, 7), date(2026, 12, 13)),
    ("本周有吗", date(2026, 12, 7), date(2026, 12, 13)),
    ("下周哪天接待", date(2026, 12, 14), date(2026, 12, 20)),
    ("周六有接待吗", date(2026, 12, 12), date(2026, 12, 12)),
    ("星期六在不在", date(2026, 12, 12), date(2026, 12, 12)),
    ("下周六呢", date(2026, 12, 19), date(2026, 12, 19)),
    ("周末有没有", date(2026, 12, 12), date(2026, 12, 13)),
    ("12月5日有接待吗", date(2027, 12, 5), date(2027, 12, 5)),  # already past this year: next year's
    ("12月9日有接待吗", date(2026, 12, 9), date(2026, 12, 9)),
    ("十二月十日呢", date(2026, 12, 10), date(2026, 12, 10)),
    ("2026-12-20", date(2026, 12, 20), date(2026, 12, 20)),
    ("下个月有吗", date(2027, 1, 1), date(2027, 1, 31)),
    ("20号有接待吗", date(2026, 12, 20), date(2026, 12, 20)),
])
def test_date_words(text: str, first: date, last: date) -> None:
    assert date_span(text, TODAY) == DateSpan(first, last)


def test_a_bare_weekday_already_past_this_week_is_the_next_one() -> None:
    saturday = date(2026, 12, 12)
    assert date_span("周一有吗", saturday) == DateSpan(date(2026, 12, 14), date(2026, 12, 14))
    assert date_span("下次接待是什么时候", TODAY) is None
    assert date_span("13月40日", TODAY) is None


def reception(station: str = "SZ-HOME", deputies: tuple[str, ...] = ("D004",), day: date = date(2026, 12, 12),
              start: time = time(9), end: time = time(11), **kw) -> Reception:
    return Reception(station, deputies, day, start, end, kw.pop("topic", "主题接待：养老服务"),
                     kw.pop("place", "盛泽镇代表之家（舜湖西路 1 号）"), **kw)


async def services_with(*items: Reception):
    services = make_services(FixedClock(MONDAY_10))
    await seed(services)
    for item in items:
        await receptions.create_reception(services, item)
    return services


async def test_the_rules_of_a_reception_in_chinese() -> None:
    services = await services_with(reception())
    bad = [
        (reception(start=time(11), end=time(9)), "reception_end_before_start"),
        (reception(day=date(2026, 12, 6)), "reception_in_past"),
        (reception(station="NOPE", day=date(2026, 12, 13)), "reception_unknown_station"),
        (reception(deputies=("D404",), day=date(2026, 12, 13)), "reception_unknown_deputy"),
        # D004 is already at SZ-HOME 09–11 that day
        (reception(station="LL-HOME", start=time(10), end=time(12)), "reception_deputy_busy"),
    ]
    for item, key in bad:
        with pytest.raises(ReceptionInvalid) as caught:
            await receptions.create_reception(services, item)
        assert [e.key for e in caught.value.errors] == [key]
        assert all(receptions.error_texts(caught.value.errors, services.texts))
    # after the other one ends: fine; the same key again is an update, not a clash with itself
    await receptions.create_reception(services, reception(station="LL-HOME", start=time(11), end=time(12)))
    updated = await receptions.create_reception(services, reception(topic="主题接待：老旧小区改造"))
    assert [r.topic for r in await receptions.list_receptions(services, station="SZ-HOME")] == [updated.topic]


async def test_cancelled_receptions_are_not_offered() -> None:
    services = await services_with(reception())
    [stored] = await receptions.list_receptions(services)
    await receptions.cancel_reception(services, stored.id)
    reply = await receptions.answer_schedule(services, CITIZEN, "周六有接待吗")
    assert "盛泽镇代表之家（舜湖西路" not in reply and services.texts.get("reception_offer_issue") in reply


async def test_answer_lists_nearest_first_at_most_three_one_line_each() -> None:
    services = await services_with(
        reception("SZ-HOME", ("D004",), date(2026, 12, 8), place="盛泽镇代表之家"),
        reception("LL-HOME", ("D003",), date(2026, 12, 9), place="黎里镇代表之家"),
        reception("LL-DC", ("D001", "D002"), date(2026, 12, 11), place="东村村委会", topic="主题接待：农村道路"),
        reception("SZ-HOME", ("D004",), date(2026, 12, 10), place="盛泽镇代表之家"),
    )
    await citizens.bind_station_by_scene(services, CITIZEN, "station:LL-DC")
    reply = await receptions.answer_schedule(services, CITIZEN, "这周哪个代表接待")
    lines = reply.splitlines()
    assert lines[0] == "12月7日到12月13日的代表接待："
    # the bound station first, then its town (黎里镇), then the district, earliest first
    assert lines[1] == "· 12月11日（周五）09:00-11:00 东村村委会，王晓梅、李建国代表，主题接待：农村道路"
    assert lines[2].startswith("· 12月9日（周三）09:00-11:00 黎里镇代表之家，周玉兰代表")
    assert lines[3].startswith("· 12月8日（周二）09:00-11:00 盛泽镇代表之家，陈卫东代表")
    assert len([line for line in lines if line.startswith("· ")]) == 3


async def test_answer_by_town_by_deputy_and_by_day() -> None:
    services = await services_with(
        reception("SZ-HOME", ("D004",), date(2026, 12, 12)),
        reception("LL-HOME", ("D001",), date(2026, 12, 8), place="黎里镇代表之家"),
    )
    town = await receptions.answer_schedule(services, CITIZEN, "盛泽镇哪天有代表接待")
    assert "12月12日（周六）" in town and "黎里镇代表之家" not in town
    short = await receptions.answer_schedule(services, CITIZEN, "盛泽哪天有接待")
    assert "12月12日（周六）" in short
    deputy = await receptions.answer_schedule(services, CITIZEN, "王代表什么时候在")
    assert "12月8日（周二）" in deputy and "盛泽" not in deputy
    tomorrow = await receptions.answer_schedule(services, CITIZEN, "明天有接待吗")
    assert "12月8日（周二）" in tomorrow and "12月12日" not in tomorrow
    nxt = await receptions.answer_schedule(services, CITIZEN, "下次接待是什么时候")
    assert nxt.splitlines()[1].startswith("· 12月8日")


async def test_no_reception_says_so_names_the_next_one_and_offers_to_take_the_issue() -> None:
    services = await services_with(reception("SZ-HOME", ("D004",), date(2026, 12, 19)))
    reply = await receptions.answer_schedule(services, CITIZEN, "明天有接待吗")
    assert reply.splitlines()[0] == "12月8日没有安排代表接待。"
    assert "全区最近的一场" in reply and "12月19日（周六）" in reply
    assert services.texts.get("reception_offer_issue") in reply
    empty = await services_with()
    reply = await receptions.answer_schedule(empty, CITIZEN, "黎里镇哪天有接待")
    assert reply.splitlines()[0] == "黎里镇代表之家近期还没有安排代表接待。"
    assert "全区最近的一场" not in reply


class ScheduleNLU:
    async def parse(self, text: str) -> ParseResult:
        return ParseResult.from_dict({"text": text, "intent": {"name": "ask_schedule", "confidence": 0.9},
                                      "intent_ranking": [{"name": "ask_schedule", "confidence": 0.9}]})


async def test_the_intent_ask_schedule_answers_in_chat_with_the_real_receptions() -> None:
    services = await services_with(reception())
    services.nlu = ScheduleNLU()
    reply = await Dispatcher(services, ROUTERS).handle(
        Inbound(openid=CITIZEN, kind=InboundKind.TEXT, text="这周哪个代表接待", msg_id="1", created_at=1))
    assert reply is not None and "12月12日（周六）09:00-11:00 盛泽镇代表之家" in reply


def test_request_body_validation_for_the_api() -> None:
    body = {"station": "SZ-HOME", "deputy_codes": ["D004"], "date": "2026-12-12", "start": "09:00",
            "end": "11:00", "topic": "主题接待", "place": "盛泽镇代表之家"}
    parsed = receptions.reception_from_json(body)
    assert parsed == reception(topic="主题接待", place="盛泽镇代表之家")
    assert receptions.reception_json(parsed)["start"] == "09:00"
    with pytest.raises(ReceptionInvalid) as caught:
        receptions.reception_from_json({**body, "date": "12/12", "start": "9点", "deputy_codes": [], "capacity": "x"})
    assert sorted(e.key for e in caught.value.errors) == [
        "reception_bad_date", "reception_bad_field", "reception_bad_field", "reception_bad_time"]


def test_reminders_are_due_the_evening_before_an_hour_before_and_on_the_morning() -> None:
    from datetime import datetime

    from bot.core.receptions import DEPUTY_EVE, DEPUTY_HOUR, FOLLOWERS_MORNING, due_reminders

    r = reception(day=date(2026, 12, 12), start=time(9, 30))
    at = {"eve_at": time(18), "morning_at": time(7)}
    assert due_reminders(r, datetime(2026, 12, 11, 17, 59), **at) == []
    assert due_reminders(r, datetime(2026, 12, 11, 18, 0), **at) == [DEPUTY_EVE]
    assert due_reminders(r, datetime(2026, 12, 12, 7, 0), **at) == [DEPUTY_EVE, FOLLOWERS_MORNING]
    assert due_reminders(r, datetime(2026, 12, 12, 8, 30), **at) == [DEPUTY_HOUR, FOLLOWERS_MORNING]
    assert due_reminders(r, datetime(2026, 12, 12, 9, 30), **at) == []  # started
    assert due_reminders(r.cancelled(), datetime(2026, 12, 12, 8, 30), **at) == []


async def test_reminders_go_once_and_a_cancellation_tells_everyone_already_told() -> None:
    from datetime import datetime

    from bot.core.receptions import Follow
    from fakes import WANG_OPENID, outbox

    services = await services_with(reception("LL-DC", ("D001", "D002"), date(2026, 12, 12), time(9, 30)))
    async with services.uow() as uow:
        await uow.follows.follow(Follow("oFollowerA", "LL-DC", MONDAY_10))
        await uow.follows.follow(Follow("oFollowerB", "LL-DC", MONDAY_10, morning_reminder=False))
        await uow.commit()
    services.clock.set(datetime(2026, 12, 11, 18, 0))
    assert await receptions.send_reminders(services) == 1
    assert await receptions.send_reminders(services) == 0  # a second run finds the work done
    eve = [m.recipient_openid for m in await outbox(services)]
    assert sorted(eve) == sorted([WANG_OPENID, "oDeputyLi00000000002"])
    assert "明天" in (await outbox(services))[0].text
    services.clock.set(datetime(2026, 12, 12, 8, 0))  # the morning: followers who asked
    assert await receptions.send_reminders(services) == 1
    assert [m.recipient_openid for m in await outbox(services)][2:] == ["oFollowerA"]
    [stored] = await receptions.list_receptions(services)
    await receptions.cancel_reception(services, stored.id)
    services.clock.set(datetime(2026, 12, 12, 8, 30))
    assert await receptions.send_reminders(services) == 0  # cancelled: no hour-before reminder
    notices = [m for m in await outbox(services) if "取消" in m.text]
    assert sorted(m.recipient_openid for m in notices) == sorted([WANG_OPENID, "oDeputyLi00000000002", "oFollowerA"])


async def test_a_change_is_told_once_to_everyone_already_told_and_reminders_run_again_for_the_new_time() -> None:
    from dataclasses import replace
    from datetime import datetime

    from bot.core.receptions import Follow
    from fakes import WANG_OPENID, outbox
    from handlers import broadcasts
    from handlers.broadcasts import BroadcastRequest

    services = await services_with(reception("LL-DC", ("D001",), date(2026, 12, 12), time(9, 30)))
    [stored] = await receptions.list_receptions(services)
    async with services.uow() as uow:
        for openid in ("oFollowerA", "oFollowerB"):
            await uow.follows.follow(Follow(openid, "LL-DC", MONDAY_10))
        await uow.commit()
    await broadcasts.create_broadcast(services, BroadcastRequest("station", "LL-DC", reception_id=stored.id))
    services.clock.set(datetime(2026, 12, 11, 18, 0))
    assert await receptions.send_reminders(services) == 1  # the eve reminder to 王晓梅
    before = len(await outbox(services))

    await receptions.create_reception(services, replace(stored, topic="主题接待：养老与医疗"))  # no news for that
    assert len(await outbox(services)) == before
    moved = replace(stored, day=date(2026, 12, 13), start=time(14), end=time(16), place="东村文化礼堂")
    await receptions.create_reception(services, moved)
    changes = [m for m in await outbox(services) if m.text.startswith("【接待调整】")]
    assert sorted(m.recipient_openid for m in changes) == sorted([WANG_OPENID, "oFollowerA", "oFollowerB"])
    assert "原定12月12日 09:30" in changes[0].text and "12月13日（周日）14:00-16:00 东村文化礼堂" in changes[0].text
    assert changes[0].template_key == "reception" and changes[0].template_data["time2"] == "2026年12月13日 14:00"

    services.clock.set(datetime(2026, 12, 12, 18, 0))  # the eve of the new day: reminded again, once
    assert await receptions.send_reminders(services) == 1
    assert await receptions.send_reminders(services) == 0
    eves = [m.recipient_openid for m in await outbox(services) if m.text.startswith("【接待提醒】您明天")]
    assert eves == [WANG_OPENID, WANG_OPENID]  # the old time's and the new time's, no more

    await receptions.create_reception(services, replace(moved, deputy_codes=("D001", "D002")))
    changes = [m for m in await outbox(services) if m.text.startswith("【接待调整】")]
    assert len(changes) == 6  # a second change: again one message each of the three
