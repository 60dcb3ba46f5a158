"""The reception and broadcast endpoints of the JSON API: each endpoint, each role's scope (outside
it: 404, as for a missing one), Chinese errors naming the field, and a broadcast that reaches the
fake WeChat API (which enforces the mass limits) at once, paced."""
from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from rig import build_sending_rig
from seed import NOW

from bot.console.common import DEPS
from bot.core.receptions import Follow
from bot.wechat.fake_api import FakeWeChatAPI

SATURDAY = (NOW.date() + timedelta(days=4)).isoformat()  # NOW is a Tuesday
FOLLOWERS = [f"oFollowerApi{i:04d}" for i in range(30)]


def reception(**changes: object) -> dict[str, object]:
    return {"station": "SZ-01", "deputy_codes": ["D101"], "date": SATURDAY, "start": "09:00", "end": "11:00",
            "topic": "主题接待：养老服务", "place": "东方社区服务中心", **changes}


@pytest.fixture
async def api(sql_uow_factory):
    wechat = FakeWeChatAPI()
    async with TestClient(TestServer(wechat.create_app())) as wechat_client:
        rig, senders, gateway = await build_sending_rig(sql_uow_factory, str(wechat_client.make_url("")))
        async with sql_uow_factory() as uow:
            for openid in FOLLOWERS:
                await uow.follows.follow(Follow(openid, "SZ-01" if openid < FOLLOWERS[20] else "QD-01", NOW))
            await uow.commit()
        async with TestClient(TestServer(rig.app)) as client:
            client.rig, client.wechat, client.senders = rig, wechat, senders  # type: ignore[attr-defined]
            yield client
        await gateway.aclose()


async def call(api, who: str, method: str, path: str, **kw):
    headers = {"Authorization": f"Bearer {api.rig.tokens[who]}"}
    async with api.request(method, "/api/v1" + path, headers=headers, **kw) as r:
        return r.status, await r.json()


async def test_create_list_get_and_cancel_a_reception_in_scope(api) -> None:
    status, body = await call(api, "shengze", "POST", "/receptions", json=reception(live_url="https://live.example/1",
                                                                                     capacity=30))
    assert status == 201 and isinstance(body["id"], int)
    assert body["station_name"] == "盛泽镇东方社区联络站" and body["deputy_names"] == ["沈建国"]
    assert (body["capacity"], body["status"], body["record"]) == (30, "scheduled", None)
    rid = body["id"]
    await call(api, "qu", "POST", "/receptions", json=reception(station="QD-01", deputy_codes=["D201"]))
    _, listed = await call(api, "shengze", "GET", "/receptions")
    assert [i["id"] for i in listed["items"]] == [rid]  # not 七都镇's
    _, listed = await call(api, "qu", "GET", "/receptions?town=七都镇")
    assert [i["station"] for i in listed["items"]] == ["QD-01"]
    _, listed = await call(api, "qu", "GET", f"/receptions?from={SATURDAY}&to={SATURDAY}")
    assert listed["total"] == 2
    _, listed = await call(api, "qu", "GET", "/receptions?from=2027-01-01")
    assert listed["total"] == 0
    assert (await call(api, "shengze", "GET", "/receptions?station=QD-01"))[0] == 404
    assert (await call(api, "nanma", "GET", f"/receptions/{rid}"))[0] == 404  # SZ-02's account
    assert (await call(api, "shengze", "GET", f"/receptions/{rid}"))[1]["topic"] == "主题接待：养老服务"
    assert (await call(api, "nanma", "POST", f"/receptions/{rid}/cancel"))[0] == 404
    status, body = await call(api, "shengze", "POST", f"/receptions/{rid}/cancel")
    assert status == 200 and body["status"] == "cancelled"
    async with api.rig.app._subapps[1][DEPS].uow_factory() as uow:
        log = await uow.audit.page(0, 5)
    assert [e.action for e in log.entries][:3] == ["reception_cancelled", "reception_created", "reception_created"]


@pytest.mark.parametrize("changes, field, words", [
    ({"end": "08:00"}, "end", "必须晚于开始时间"),
    ({"date": "2026-11-30"}, "date", "已经过去"),
    ({"deputy_codes": ["D999"]}, "deputy_codes", "D999"),
    ({"date": "2026-12-32"}, "date", "YYYY-MM-DD"),
    ({"start": "9点"}, "start", "HH:MM"),
    ({"topic": ""}, "topic", "topic"),
])
async def test_bad_receptions_are_a_400_naming_the_field_in_chinese(api, changes, field, words) -> None:
    status, body = await call(api, "qu", "POST", "/receptions", json=reception(**changes))
    assert status == 400 and body["error"] == "invalid"
    assert [e["field"] for e in body["errors"]] == [field] and words in body["message"]


async def test_unknown_or_out_of_scope_station_and_a_busy_deputy(api) -> None:
    missing = await call(api, "shengze", "POST", "/receptions", json=reception(station="XX-99"))
    outside = await call(api, "shengze", "POST", "/receptions", json=reception(station="QD-01", deputy_codes=["D201"]))
    assert missing[0] == outside[0] == 404 and missing[1]["field"] == outside[1]["field"] == "station"
    assert "XX-99" in missing[1]["message"]
    assert (await call(api, "qu", "POST", "/receptions", json=reception()))[0] == 201
    status, body = await call(api, "qu", "POST", "/receptions", json=reception(station="SZ-02", start="10:00",
                                                                                end="12:00"))
    assert status == 400 and body["errors"][0]["field"] == "deputy_codes" and "时间冲突" in body["message"]
    assert (await call(api, "qu", "POST", "/receptions", data="not json"))[0] == 400


async def test_broadcast_dry_run_then_sent_at_once_then_progress(api) -> None:
    status, body = await call(api, "shengze", "POST", "/broadcasts", json={"station": "SZ-01", "text": "周六有接待",
                                                                           "dry_run": True})
    assert status == 200 and body["id"] is None and body["plan"]["mass_openids"] == 20
    assert body["plan"]["remaining_budget"] == 4 and api.wechat.mass_calls() == []
    status, body = await call(api, "shengze", "POST", "/broadcasts", json={"station": "SZ-01", "text": "周六有接待"})
    assert status == 201 and body["plan"]["mass_openids"] == 20
    await asyncio.gather(*api.senders)
    assert all(api.wechat.mass_received[o] == ["周六有接待"] for o in FOLLOWERS[:20])
    assert FOLLOWERS[25] not in api.wechat.mass_received  # 七都镇's follower
    status, shown = await call(api, "shengze", "GET", f"/broadcasts/{body['id']}")
    assert status == 200 and shown["state"] == "done"
    assert shown["progress"]["mass_openids"] == {"sent": 20, "pending": 0, "failed": 0}
    assert (await call(api, "nanma", "GET", f"/broadcasts/{body['id']}"))[0] == 404
    assert (await call(api, "shengze", "GET", "/broadcasts/999999"))[0] == 404


async def test_a_reception_announcement_failures_and_retry(api) -> None:
    _, created = await call(api, "qu", "POST", "/receptions", json=reception())
    api.wechat.fail_next("/cgi-bin/message/mass/send", 45009, "reach max api daily quota limit")
    status, body = await call(api, "qu", "POST", "/broadcasts", json={"town": "盛泽镇", "reception_id": created["id"]})
    assert status == 201
    await asyncio.gather(*api.senders)
    _, shown = await call(api, "qu", "GET", f"/broadcasts/{body['id']}")
    assert shown["state"] == "failed" and shown["failures"][0]["error"].startswith("45009")
    status, retried = await call(api, "qu", "POST", f"/broadcasts/{body['id']}/retry")
    assert status == 200 and retried["retried"] == 1
    await asyncio.gather(*api.senders)
    _, shown = await call(api, "qu", "GET", f"/broadcasts/{body['id']}")
    assert shown["state"] == "done" and shown["failures"] == []
    assert "东方社区服务中心" in api.wechat.mass_received[FOLLOWERS[0]][0]


async def test_broadcast_scope_errors_and_the_monthly_budget(api) -> None:
    assert (await call(api, "shengze", "POST", "/broadcasts", json={"town": "七都镇", "text": "x"}))[0] == 404
    assert (await call(api, "nanma", "POST", "/broadcasts", json={"town": "盛泽镇", "text": "x"}))[0] == 404
    status, body = await call(api, "qu", "POST", "/broadcasts", json={"text": "x"})
    assert status == 400 and body["errors"][0]["field"] == "station"
    status, body = await call(api, "qu", "POST", "/broadcasts", json={"station": "SZ-01"})
    assert status == 400 and "text" in body["message"]
    for n in range(4):
        assert (await call(api, "qu", "POST", "/broadcasts", json={"station": "SZ-01", "text": f"通知{n}"}))[0] == 201
        await asyncio.gather(*api.senders)
    status, body = await call(api, "qu", "POST", "/broadcasts", json={"station": "SZ-01", "text": "第五条"})
    assert status == 409 and body["error"] == "refused" and "4次" in body["message"]
    assert all(len(api.wechat.mass_received[o]) == 4 for o in FOLLOWERS[:20])


async def test_the_openapi_document_describes_them_and_answers_match(api) -> None:
    from jsonschema import Draft202012Validator

    async with api.get("/api/v1/openapi.json") as r:
        doc = await r.json()

    def check(path: str, method: str, status: int, body: object) -> None:
        schema = doc["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
        Draft202012Validator({"components": doc["components"], **schema}).validate(body)

    status, created = await call(api, "qu", "POST", "/receptions", json=reception())
    check("/receptions", "post", status, created)
    check("/receptions", "post", *await call(api, "qu", "POST", "/receptions", json=reception(end="08:00")))
    check("/receptions", "get", *await call(api, "qu", "GET", "/receptions"))
    check("/receptions/{id}", "get", *await call(api, "qu", "GET", f"/receptions/{created['id']}"))
    check("/broadcasts", "post", *await call(api, "qu", "POST", "/broadcasts",
                                             json={"station": "SZ-01", "text": "x", "dry_run": True}))
    status, sent = await call(api, "qu", "POST", "/broadcasts", json={"station": "SZ-01", "text": "x"})
    check("/broadcasts", "post", status, sent)
    await asyncio.gather(*api.senders)
    check("/broadcasts/{id}", "get", *await call(api, "qu", "GET", f"/broadcasts/{sent['id']}"))
    check("/broadcasts/{id}/retry", "post", *await call(api, "qu", "POST", f"/broadcasts/{sent['id']}/retry"))
    check("/receptions/{id}/cancel", "post", *await call(api, "qu", "POST", f"/receptions/{created['id']}/cancel"))
    assert date.fromisoformat(created["date"]).isoweekday() == 6
