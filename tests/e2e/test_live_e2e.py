"""云直播 through the running app: real signed (and AES-encrypted) WeChat XML to /wechat, SQLite +
memory and PostgreSQL + Redis, the fake WeChat API recording pushes. Join by QR (SCAN and a
follow) and by keyword, ask, a WeChat retry is not a second question, answers reach every asker
of merged questions, the end files tickets and tells each asker once."""
from __future__ import annotations

from datetime import timedelta

import pytest

from bot.core.live import LiveSession
from handlers import live
from handlers.live import HostAction

pytestmark = pytest.mark.parametrize("encrypted", [True], ids=["aes"])


async def _session(stack) -> LiveSession:
    now = stack.clock.now()
    return await live.create_session(stack.bot.services, LiveSession(
        "SL-01", "江村代表直播接待", "https://live.douyin.com/1", now - timedelta(minutes=1), now + timedelta(hours=2),
        ("D001",)))


async def test_join_ask_retry_answer_and_end(stack) -> None:
    services = stack.bot.services
    session = await _session(stack)
    assert "江村代表直播接待" in await stack.event("oLiveA", "SCAN", f"live:{session.id}")
    followed = await stack.event("oLiveB", "subscribe", f"qrscene_live:{session.id}")
    assert "江村代表直播接待" in followed and "退出直播" in followed
    assert "江村代表直播接待" in await stack.send("oLiveC", session.keyword)

    first = await stack.send("oLiveA", "江村垃圾站什么时候建好", msg_id=7001)
    assert "问题已收到" in first
    assert await stack.send("oLiveA", "江村垃圾站什么时候建好", msg_id=7001) == first  # WeChat's retry
    await stack.send("oLiveB", "江村的垃圾站什么时候能建好？", msg_id=7002)
    await stack.send("oLiveC", "养老补贴怎么申请", msg_id=7003)
    qs = await live.questions(services, session.id)
    assert [q.asker_openid for q in qs] == ["oLiveA", "oLiveB", "oLiveC"]

    await live.act(services, session.id, qs[1].id, HostAction("merge", "host", into=qs[0].id))
    await live.act(services, session.id, qs[0].id, HostAction("answer", "host", text="年底前建好"))
    await stack.delivered()
    for openid in ("oLiveA", "oLiveB"):
        assert any("年底前建好" in t for t in stack.pushes(openid)), openid
    assert not any("年底前建好" in t for t in stack.pushes("oLiveC"))

    stack.clock.current += timedelta(hours=3)
    assert await stack.bot.run_job("end_live_sessions") == 1
    await stack.delivered()
    notices = [t for t in stack.pushes("oLiveC") if "已转为工单" in t]
    assert len(notices) == 1
    number = (await live.questions(services, session.id))[2].ticket_number
    assert f"#{number}" in notices[0]
    async with services.uow() as uow:
        ticket = await uow.tickets.get(number)
    assert ticket.station_code == "SL-01" and ticket.citizen_openid == "oLiveC"
    # the mode ended with the session: the next text is not a question
    reply = await stack.send("oLiveC", "还有问题")
    assert reply is None or "问题已收到" not in reply
    assert len(await live.questions(services, session.id)) == 3


async def _tokens(stack) -> dict[str, str]:
    from bot.console.auth import create_account, issue_token

    uow, clock = stack.bot.services.uow, stack.clock
    await create_account(uow, clock, username="qu", password="一二三四五六七八", role="district", name="区人大")
    await create_account(uow, clock, username="kfq", password="一二三四五六七八", role="town", town="开发区", name="开发区")
    return {u: await issue_token(uow, clock, u) for u in ("qu", "kfq")}


async def test_the_api_and_its_stream(stack) -> None:
    import asyncio

    tokens = await _tokens(stack)
    host = {"Authorization": f"Bearer {tokens['qu']}"}
    other = {"Authorization": f"Bearer {tokens['kfq']}"}
    c = stack.client
    body = {"station": "SL-01", "title": "江村直播", "stream_url": "https://live.douyin.com/2",
            "starts_at": "2026-12-01T09:30:00+08:00", "ends_at": "2026-12-01T12:00:00+08:00", "deputy_codes": ["D001"]}
    async with c.post("/api/v1/live-sessions", json=body, headers=host) as r:
        assert r.status == 201, await r.text()
        session = await r.json()
    sid = session["id"]
    assert session["qr_scene"] == f"live:{sid}" and session["status"] == "running"
    async with c.post("/api/v1/live-sessions", json={**body, "starts_at": "明天"}, headers=host) as r:
        assert r.status == 400 and "时区" in (await r.json())["message"]
    async with c.post("/api/v1/live-sessions", json={**body, "keyword": session["keyword"], "station": "SL-H"},
                      headers=host) as r:
        assert r.status == 400 and "江村代表联络站" in (await r.json())["message"]
    async with c.get(f"/api/v1/live-sessions/{sid}/questions", headers=other) as r:
        assert r.status == 404  # another town's session

    stream = await c.get(f"/api/v1/live-sessions/{sid}/stream", headers=host)
    assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
    await stream.content.readline()
    await stack.send("oLiveD", session["keyword"])
    await stack.send("oLiveD", "江村的河道什么时候清淤", msg_id=8001)
    event = await asyncio.wait_for(_next_event(stream), 5)
    assert event["text"] == "江村的河道什么时候清淤" and event["state"] == "new"
    stream.close()

    async with c.get(f"/api/v1/live-sessions/{sid}/questions", headers=host) as r:
        items = (await r.json())["items"]
    qid = items[0]["id"]
    url = f"/api/v1/live-sessions/{sid}/questions/{qid}"
    first, second = await asyncio.gather(c.post(f"{url}/answer", json={"text": "下周"}, headers=host),
                                         c.post(f"{url}/answer", json={"text": "下月"}, headers=host))
    assert sorted([first.status, second.status]) == [200, 409]
    loser = second if second.status == 409 else first
    assert "已经由 qu" in (await loser.json())["message"]
    async with c.post(f"{url}/hide", json={}, headers=host) as r:
        assert r.status in (400, 409)
    other_session = await (await c.post("/api/v1/live-sessions", json={**body, "station": "SL-H"}, headers=host)).json()
    async with c.post(f"/api/v1/live-sessions/{other_session['id']}/questions/{qid}/star", headers=host) as r:
        assert r.status == 404  # a question of another session
    async with c.post(f"/api/v1/live-sessions/{sid}/end", headers=host) as r:
        assert r.status == 200
        assert (await r.json())["summary"]["answered"] == 1
    reply = await stack.send("oLiveE", session["keyword"])
    assert "已经在12月1日 10:00结束" in reply


async def _next_event(response) -> dict:
    import json

    while True:
        line = (await response.content.readline()).decode()
        if line.startswith("data: "):
            return json.loads(line[6:])


CUSTOM_PATH = "/cgi-bin/message/custom/send"


@pytest.mark.parametrize("way", ["custom", "subscribe", "template", "held"])
async def test_an_answer_goes_back_by_the_way_every_push_takes(stack, way) -> None:
    """Customer-service text in the window; when WeChat says the window is used up (45047): the
    订阅通知 the asker accepted, or the template message, or held and joined into one message that
    goes when they next write."""
    from bot.wechat.platform import subscribe_popup_xml
    from e2e_stack import ACCOUNT

    services, api = stack.bot.services, stack.api
    session = await _session(stack)
    await stack.send("oWay", session.keyword)
    if way == "subscribe":
        services.settings.subscribe_id_live = "SUB-LIVE"
        stack.created += 1
        accepted = await stack.post_xml(subscribe_popup_xml("oWay", ACCOUNT, {"SUB-LIVE": "accept"},
                                                            created_at=stack.created))
        assert accepted.status == 200
        api.grant_subscription("oWay", "SUB-LIVE")
    if way == "template":
        services.settings.template_id_live = "TPL-LIVE"
    await stack.send("oWay", "村口路灯坏了", msg_id=9101)
    await stack.send("oWay", "河道什么时候清淤", msg_id=9102)
    first, second = await live.questions(services, session.id)
    if way != "custom":
        api.fail_next(CUSTOM_PATH, 45047, "out of response count limit")
    await live.act(services, session.id, first.id, HostAction("answer", "host", text="明天就修"))
    await stack.delivered()
    delivered = api.messages("oWay")
    if way == "custom":
        assert [m["msgtype"] for m in delivered] == ["text"] and "明天就修" in delivered[0]["text"]
    elif way in ("subscribe", "template"):
        assert [m["msgtype"] for m in delivered] == [way]
        call = delivered[0]
        assert call["template_id"] == ("SUB-LIVE" if way == "subscribe" else "TPL-LIVE")
        assert call["data"]["thing1"] == "江村代表直播接待" and call["data"]["thing2"] == "村口路灯坏了"
        assert call["data"]["thing3"] == "答：明天就修"
    else:
        assert delivered == []
        await live.act(services, session.id, second.id, HostAction("answer", "host", text="下个月清淤"))
        await stack.delivered()
        assert api.messages("oWay") == []
        async with services.uow() as uow:
            assert len(await uow.outbox.held_for("oWay")) == 2
        await stack.send("oWay", "谢谢", msg_id=9103)  # they write: the window opens, the held message goes
        await stack.delivered()
        texts = stack.pushes("oWay")
        assert len(texts) == 1 and "明天就修" in texts[0] and "下个月清淤" in texts[0]


async def test_the_other_askers_of_a_merged_question_follow_its_ticket(stack) -> None:
    """Through /wechat and the API: two askers of one question, merged, the session ended: each is told
    the ticket number once, the second sees it in 我的诉求 and by「#编号」 and hears when staff hand it
    to another deputy; a third citizen cannot see it."""
    tokens = await _tokens(stack)
    host = {"Authorization": f"Bearer {tokens['qu']}"}
    c, services = stack.client, stack.bot.services
    session = await _session(stack)
    for openid, text, msg_id in (("oFolA", "江村垃圾站什么时候建好", 9201), ("oFolB", "江村的垃圾站何时建好", 9202)):
        await stack.send(openid, session.keyword)
        await stack.send(openid, text, msg_id=msg_id)
    first, second = await live.questions(services, session.id)
    base = f"/api/v1/live-sessions/{session.id}"
    async with c.post(f"{base}/questions/{second.id}/merge", json={"into": first.id}, headers=host) as r:
        assert r.status == 200, await r.text()
    async with c.post(f"{base}/end", headers=host) as r:
        assert r.status == 200 and (await r.json())["summary"]["tickets"] == 1
    await stack.delivered()
    number = (await live.questions(services, session.id))[0].ticket_number
    for openid in ("oFolA", "oFolB"):
        notices = [t for t in stack.pushes(openid) if "已转为工单" in t]
        assert len(notices) == 1 and f"#{number}" in notices[0], openid
    assert f"#{number}" in await stack.send("oFolB", "我的诉求")
    assert f"#{number}" not in (await stack.send("oFolC", "我的诉求") or "")
    async with c.post(f"/api/v1/tickets/{number}/assign", json={"deputy_code": "D002"}, headers=host) as r:
        assert r.status == 200, await r.text()
    await stack.delivered()
    to_b = [t for t in stack.pushes("oFolB") if "测试代表乙" in t]
    assert len(to_b) == 1 and f"#{number}" in to_b[0] and "也问过" in to_b[0]
    assert any("测试代表乙" in t for t in stack.pushes("oFolA"))
    timeline = await stack.send("oFolB", f"#{number}")
    assert "江村垃圾站" in timeline and "测试代表乙" in timeline
    assert "江村垃圾站" not in (await stack.send("oFolC", f"#{number}") or "")


async def test_answers_beyond_the_windows_five_messages_wait_as_one(stack) -> None:
    """Seven questions answered: five customer-service messages (WeChat's window allows five), the
    other two held, and joined into one message when the asker next writes."""
    services = stack.bot.services
    # one delivery pass at a time: two passes at once can each send under the same window count
    # (the count is read and written back in the key-value store; real WeChat then says 45047)
    await stack.bot.delivery.stop()
    session = await _session(stack)
    await stack.send("oMany", session.keyword)
    for n in range(7):
        await stack.send("oMany", f"第{n}个问题：村里的事情", msg_id=9300 + n)
    for n, question in enumerate(await live.questions(services, session.id)):
        await live.act(services, session.id, question.id, HostAction("answer", "host", text=f"第{n}个回答"))
    await stack.delivered()
    sent = stack.pushes("oMany")
    assert len(sent) == 5 and all(f"第{n}个回答" in sent[n] for n in range(5))
    async with services.uow() as uow:
        assert len(await uow.outbox.held_for("oMany")) == 2
    await stack.send("oMany", "好的", msg_id=9400)
    await stack.delivered()
    sent = stack.pushes("oMany")
    assert len(sent) == 6 and "第5个回答" in sent[5] and "第6个回答" in sent[5]
