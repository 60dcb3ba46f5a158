"""The ticket actions over HTTP, console forms and API: each role's scope (outside: 404), Chinese
refusals naming the field, a stale form told to reload, the pushes stored, the audit log."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer
from rig import build_rig
from seed import CITIZEN
from test_console_pages import csrf_of, login

from bot.core.people import Deputy

NEW_OPENID = "oid-d103"


@pytest.fixture
async def client(sql_uow_factory):
    rig = await build_rig(sql_uow_factory)
    async with sql_uow_factory() as uow:  # a second deputy at SZ-01, bound
        await uow.deputies.upsert(Deputy("D103", "刘红梅", "镇", "SZ-01", "13800000103"))
        await uow.deputies.bind("D103", NEW_OPENID)
        await uow.commit()
    async with TestClient(TestServer(rig.app)) as c:
        c.rig = rig  # type: ignore[attr-defined]
        c.uow = sql_uow_factory  # type: ignore[attr-defined]
        yield c


async def _outbox(client) -> list:
    async with client.uow() as uow:
        return list(await uow.outbox.list(("pending", "held", "failed", "sent")))


async def _audit(client) -> list:
    async with client.uow() as uow:
        return [e for e in (await uow.audit.page(0, 100)).entries if e.action != "token_issued"
                and e.action != "staff_created"]


async def _page(client, path: str) -> tuple[int, str]:
    async with client.get(path) as r:
        return r.status, await r.text()


async def _post(client, path: str, data: dict) -> tuple[int, str]:
    _, html = await _page(client, "/console/tickets")
    async with client.post(path, data={"csrf": csrf_of(html), **data}) as r:
        return r.status, await r.text()


def _revision(html: str) -> str:
    import re
    return re.search(r'name="revision" value="(\d+)"', html).group(1)


async def test_reassign_from_the_ticket_page_pushes_and_audits(client) -> None:
    n = client.rig.numbers["late"]  # SZ-01, D101
    await login(client, "shengze")
    status, html = await _page(client, f"/console/tickets/{n}")
    assert status == 200 and "分配给代表" in html and "给群众留言" in html and "作为重复工单关闭" in html
    shown = _revision(html)

    status, html = await _post(client, f"/console/tickets/{n}/assign", {"deputy_code": "D103", "revision": shown})
    assert status == 200 and "已分配给刘红梅代表" in html  # followed the redirect to the ticket page
    assert "刘红梅代表下次打开公众号时会收到" in html  # nobody wrote lately here: said as it is
    sent = {(m.recipient_openid, m.text.split("\n")[0]) for m in await _outbox(client)}
    assert any(o == CITIZEN and "刘红梅" in t for o, t in sent)
    assert any(o == NEW_OPENID and f"#{n}" in t for o, t in sent)
    assert any(o == "oid-d101" and "改派" in t for o, t in sent)
    [entry] = await _audit(client)
    assert (entry.actor, entry.action, entry.before, entry.after) == ("shengze", "ticket_assigned",
                                                                      "SZ-01 D101", "SZ-01 D103")
    # the same form again: the ticket changed since it was shown
    status, html = await _post(client, f"/console/tickets/{n}/assign", {"deputy_code": "D101", "revision": shown})
    assert status == 409 and "刚刚被别人改动过" in html and "刷新页面" in html
    status, html = await _post(client, f"/console/tickets/{n}/assign", {"deputy_code": "D201"})
    assert status == 400 and "代表：陈志明代表不在这件工单所在的联络站" in html
    other = client.rig.numbers["other_town"]
    for number in (other, "¹"):
        status, html = await _post(client, f"/console/tickets/{number}/assign", {"deputy_code": "D101"})
        assert status == 404 and "D101" not in html
    async with client.post(f"/console/tickets/{n}/assign", data={"deputy_code": "D101", "csrf": "forged"}) as r:
        assert r.status == 403
    assert len(await _audit(client)) == 1


async def test_message_and_duplicate_from_the_ticket_page(client) -> None:
    numbers = client.rig.numbers
    await login(client, "shengze")
    status, html = await _post(client, f"/console/tickets/{numbers['waiting']}/message", {"text": "明天派人去看"})
    assert status == 200 and "留言已记入办理经过" in html and "联络站留言" in html
    [pushed] = [m for m in await _outbox(client) if "明天派人去看" in m.text]
    assert pushed.recipient_openid == CITIZEN and "盛泽镇东方社区联络站" in pushed.text

    status, html = await _post(client, f"/console/tickets/{numbers['assigned']}/duplicate",
                               {"original": str(numbers["waiting"])})
    assert status == 200 and f"已关闭，并合并到工单 #{numbers['waiting']}" in html and "已合并（重复）" in html
    assert "/assign\"" not in html and "不能再分配或合并" in html  # closed: no more assigning
    status, html = await _post(client, f"/console/tickets/{numbers['late']}/duplicate",
                               {"original": str(numbers["other_town"])})
    assert status == 400 and f"合并到工单编号：没有找到工单 #{numbers['other_town']}" in html
    assert str(numbers["other_town"]) in html  # what was typed is kept
    status, html = await _post(client, f"/console/tickets/{numbers['late']}/message", {"text": " "})
    assert status == 400 and "内容：请填写留言内容" in html


async def test_visitor_page_files_a_ticket_and_keeps_what_was_typed_on_a_refusal(client) -> None:
    await login(client, "nanma")
    status, html = await _page(client, "/console/visitor")
    assert status == 200 and "登记来访诉求" in html and "群众同意把电话告诉办理的代表" in html
    status, html = await _post(client, "/console/visitor", {"summary": "", "place": "南麻社区", "details": "路面坑洼",
                                                            "category": "交通运输", "phone": "123"})
    assert status == 400 and "反映的问题：这一项不能空着" in html and "路面坑洼" in html and "南麻社区" in html
    status, html = await _post(client, "/console/visitor", {
        "summary": "南麻路面坑洼", "place": "南麻社区", "details": "", "category": "交通运输",
        "phone": "13912345678", "phone_consent": "yes", "station": ""})
    assert status == 200 and "来访诉求已登记为工单 #" in html and "来访登记" in html and "13912345678" in html
    [entry] = await _audit(client)
    assert entry.action == "visitor_filed" and entry.after.startswith("SZ-02 ")


async def _api(client, who: str, method: str, path: str, **kw):
    headers = {"Authorization": f"Bearer {client.rig.tokens[who]}"}
    async with client.request(method, "/api/v1" + path, headers=headers, **kw) as r:
        return r.status, await r.json()


async def test_api_files_for_visitors_within_each_scope(client) -> None:
    from jsonschema import Draft202012Validator

    async with client.get("/api/v1/openapi.json") as r:
        doc = await r.json()
    schema = doc["paths"]["/tickets"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    report = {"summary": "桥栏杆松了", "place": "开弦弓村", "category": "交通运输"}

    status, body = await _api(client, "qu", "POST", "/tickets", json={**report, "station": "QD-01"})
    assert status == 201 and body["station_code"] == "QD-01" and body["deputy_code"] == "D201"
    Draft202012Validator({"components": doc["components"], **schema}).validate(body)
    status, body = await _api(client, "nanma", "POST", "/tickets", json=report)
    assert status == 201 and body["station_code"] == "SZ-02"  # a station account's own
    status, body = await _api(client, "shengze", "POST", "/tickets", json={**report, "station": "QD-01"})
    assert status == 400 and body["parameter"] == "station" and body["message"].startswith("联络站：")
    status, body = await _api(client, "shengze", "POST", "/tickets", json={**report, "phone": "12"})
    assert status == 400 and body["parameter"] == "phone" and "群众电话" in body["message"]
    status, body = await _api(client, "shengze", "POST", "/tickets", data="不是 JSON")
    assert status == 400 and body["parameter"] == "summary"
    status, body = await _api(client, "shengze", "POST", "/tickets", json={**report, "phone_consent": "是"})
    assert status == 400 and body["parameter"] == "phone_consent"
    status, body = await _api(client, "qu", "POST", "/tickets", json={**report, "reception_id": 2**40})
    assert status == 400 and body["parameter"] == "reception_id"  # beyond a database integer: no such one


async def test_api_assign_scope_errors_and_stale_revision(client) -> None:
    numbers = client.rig.numbers
    status, body = await _api(client, "shengze", "POST", f"/tickets/{numbers['other_town']}/assign",
                              json={"deputy_code": "D201"})
    assert status == 404 and body["error"] == "not_found"
    for number in (numbers["late"], 999_999_999_999, "²"):
        status, body = await _api(client, "nanma", "POST", f"/tickets/{number}/assign", json={"deputy_code": "D103"})
        assert status == 404
    status, ticket = await _api(client, "shengze", "GET", f"/tickets/{numbers['late']}")
    status, body = await _api(client, "shengze", "POST", f"/tickets/{numbers['late']}/assign",
                              json={"deputy_code": "D103", "revision": ticket["revision"]})
    assert status == 200 and body["deputy_code"] == "D103" and body["revision"] == ticket["revision"] + 1
    status, body = await _api(client, "shengze", "POST", f"/tickets/{numbers['late']}/assign",
                              json={"deputy_code": "D101", "revision": ticket["revision"]})
    assert status == 409 and "刷新" in body["message"]
    status, body = await _api(client, "shengze", "POST", f"/tickets/{numbers['late']}/assign", json={})
    assert status == 400 and body["parameter"] == "deputy_code"
    status, body = await _api(client, "qu", "POST", f"/tickets/{numbers['late']}/assign",
                              json={"deputy_code": "D201"})
    assert status == 200 and body["station_code"] == "QD-01"  # district staff move it to that station
