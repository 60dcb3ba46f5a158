"""Editing a reception through the API (PATCH /receptions/{id}): a change of date, time, place or
deputies after people were told reaches each of them once, in Chinese, through the outbox; and
the after-reception record (POST /receptions/{id}/record): deputies present, visitors, the issues
raised each filed as a ticket on the visitor's behalf, errors in Chinese naming the field."""
from __future__ import annotations

import asyncio
from datetime import timedelta

from seed import NOW
from test_receptions_api import FOLLOWERS, api, call, reception  # noqa: F401 - `api` is the fixture

from handlers import receptions as reception_cases

TODAY = NOW.date().isoformat()


async def _outbox(api, words: str):
    async with api.rig.services.uow() as uow:
        return [m for m in await uow.outbox.list(("pending", "held", "sent", "failed")) if words in m.text]


async def test_an_edit_tells_everyone_told_once_and_only_for_a_change_that_matters(api) -> None:
    _, created = await call(api, "shengze", "POST", "/receptions", json=reception())
    rid = created["id"]
    assert (await call(api, "shengze", "POST", "/broadcasts", json={"station": "SZ-01", "reception_id": rid}))[0] == 201
    await asyncio.gather(*api.senders)

    status, body = await call(api, "shengze", "PATCH", f"/receptions/{rid}", json={"topic": "主题接待：养老与医疗"})
    assert status == 200 and body["topic"] == "主题接待：养老与医疗" and body["place"] == "东方社区服务中心"
    assert await _outbox(api, "【接待调整】") == []  # the topic alone: nobody is bothered

    status, body = await call(api, "shengze", "PATCH", f"/receptions/{rid}",
                              json={"start": "14:00", "end": "16:00", "place": "盛泽镇文化中心"})
    assert status == 200 and (body["start"], body["place"]) == ("14:00", "盛泽镇文化中心")
    told = await _outbox(api, "【接待调整】")
    assert sorted(m.recipient_openid for m in told) == FOLLOWERS[:20]  # the announcement's, each once
    assert "原定12月5日 09:00 在东方社区服务中心" in told[0].text and "14:00-16:00 盛泽镇文化中心" in told[0].text

    api.rig.services.clock.at = NOW.replace(day=4, hour=18)  # the eve: 沈建国 is reminded
    assert await reception_cases.send_reminders(api.rig.services) == 1
    status, _ = await call(api, "qu", "PATCH", f"/receptions/{rid}", json={"date": "2026-12-06"})
    assert status == 200
    told = await _outbox(api, "【接待调整】")
    assert len(told) == 20 + 21 and sum(m.recipient_openid == "oid-d101" for m in told) == 1

    assert (await call(api, "nanma", "PATCH", f"/receptions/{rid}", json={"topic": "x"}))[0] == 404
    assert (await call(api, "shengze", "PATCH", "/receptions/999999", json={"topic": "x"}))[0] == 404
    status, body = await call(api, "shengze", "PATCH", f"/receptions/{rid}", json={"end": "13:00"})
    assert status == 400 and body["errors"][0]["field"] == "end" and "必须晚于开始时间" in body["message"]
    status, body = await call(api, "shengze", "PATCH", f"/receptions/{rid}", json={"station": "QD-01"})
    assert status == 404 and body["field"] == "station"
    await call(api, "shengze", "POST", f"/receptions/{rid}/cancel")
    status, body = await call(api, "shengze", "PATCH", f"/receptions/{rid}", json={"topic": "x"})
    assert status == 409 and "已经取消" in body["message"]
    cancelled = await _outbox(api, "【接待取消】")
    assert len(cancelled) == 21  # the same people, by the same path


async def test_the_record_files_each_issue_as_a_ticket_and_shows_in_the_reception(api) -> None:
    _, created = await call(api, "shengze", "POST", "/receptions",
                            json=reception(date=TODAY, start="08:00", end="09:30"))
    rid = created["id"]
    issues = [{"summary": "东方路路灯坏了", "details": "晚上很黑", "category": "城乡建设", "phone": "13912345678",
               "phone_consent": True}, {"summary": "广场舞噪音扰民"}]
    status, body = await call(api, "shengze", "POST", f"/receptions/{rid}/record",
                              json={"present": ["D101"], "visitors": 12, "notes": "来了很多老人", "issues": issues})
    assert status == 200, body
    record = body["record"]
    assert (record["deputies_present"], record["visitors"], record["notes"]) == (["D101"], 12, "来了很多老人")
    assert len(record["tickets"]) == 2
    _, shown = await call(api, "shengze", "GET", f"/receptions/{rid}")
    assert shown["record"] == record
    async with api.rig.services.uow() as uow:
        tickets = [await uow.tickets.get(n) for n in record["tickets"]]
    assert [t.summary for t in tickets] == ["东方路路灯坏了", "广场舞噪音扰民"]
    assert all(t.station_code == "SZ-01" and t.reception_id == rid for t in tickets)
    assert tickets[1].place == "东方社区服务中心"  # no place given: the reception's

    status, body = await call(api, "shengze", "POST", f"/receptions/{rid}/record",
                              json={"present": ["D999"], "visitors": 3,
                                    "issues": [{"summary": "有效的问题"}, {"summary": " "}]})
    assert status == 400
    assert [e["field"] for e in body["errors"]] == ["present", "issues[1].summary"]
    assert "D999" in body["message"] and "第2个问题" in body["message"]
    _, shown = await call(api, "shengze", "GET", f"/receptions/{rid}")
    assert shown["record"] == record  # nothing filed, nothing changed
    status, body = await call(api, "shengze", "POST", f"/receptions/{rid}/record",
                              json={"present": "D101", "visitors": "十二"})
    assert status == 400 and [e["field"] for e in body["errors"]] == ["present", "visitors"]
    assert (await call(api, "nanma", "POST", f"/receptions/{rid}/record",
                       json={"present": ["D101"], "visitors": 1}))[0] == 404

    _, later = await call(api, "shengze", "POST", "/receptions",
                          json=reception(date=(NOW.date() + timedelta(days=4)).isoformat()))
    status, body = await call(api, "shengze", "POST", f"/receptions/{later['id']}/record",
                              json={"present": ["D101"], "visitors": 0})
    assert status == 400 and "还没有开始" in body["message"]
