"""The JSON API: every endpoint, each role's scope (outside it: 404, as for a missing one), errors."""
from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient, TestServer
from rig import build_rig


@pytest.fixture
async def api(sql_uow_factory):
    rig = await build_rig(sql_uow_factory)
    async with TestClient(TestServer(rig.app)) as client:
        client.rig = rig  # type: ignore[attr-defined]
        yield client


async def call(api, who: str, method: str, path: str, **kw):
    headers = {"Authorization": f"Bearer {api.rig.tokens[who]}"} if who else {}
    async with api.request(method, "/api/v1" + path, headers=headers, **kw) as r:
        return r.status, await r.json()


async def test_tickets_list_per_role_with_open311_fields(api) -> None:
    status, body = await call(api, "qu", "GET", "/tickets")
    assert status == 200 and body["total"] == 10 and len(body["items"]) == 10
    status, body = await call(api, "shengze", "GET", "/tickets?per_page=100")
    assert body["total"] == 9 and {i["town"] for i in body["items"]} == {"盛泽镇"}
    status, body = await call(api, "nanma", "GET", "/tickets")
    assert [i["service_request_id"] for i in body["items"]] == [str(api.rig.numbers["assigned"])]
    item = body["items"][0]
    assert item["status"] == "open" and item["status_detail"] == "assigned"
    assert item["requested_datetime"].endswith("+08:00") and item["agency_responsible"] == "盛泽镇南麻联络站"
    # filters as query parameters, and a town account filtering on another town sees nothing
    _, body = await call(api, "qu", "GET", "/tickets?town=七都镇")
    assert [i["service_request_id"] for i in body["items"]] == [str(api.rig.numbers["other_town"])]
    _, body = await call(api, "shengze", "GET", "/tickets?town=七都镇")
    assert body == {"items": [], "total": 0, "page": 1, "per_page": 20}
    _, body = await call(api, "qu", "GET", "/tickets?status=resolved&category=民政&since=2026-11-01&until=2026-11-30")
    assert body["total"] == 3 and {i["status"] for i in body["items"]} == {"closed"}
    _, body = await call(api, "qu", "GET", "/tickets?q=路灯")
    assert body["total"] == 1
    _, body = await call(api, "qu", "GET", "/tickets?page=2&per_page=4")
    assert len(body["items"]) == 4 and body["page"] == 2


@pytest.mark.parametrize("query, parameter", [
    ("since=2026-13-01", "since"), ("page=0", "page"), ("page=abc", "page"), ("status=open", "status"),
    ("category=火星", "category"), ("since=2026-12-02&until=2026-12-01", "until"), ("rating=9", "rating"),
])
async def test_bad_parameters_are_a_clear_400_in_chinese(api, query: str, parameter: str) -> None:
    status, body = await call(api, "qu", "GET", f"/tickets?{query}")
    assert status == 400 and body["error"] == "bad_parameter" and body["parameter"] == parameter
    assert any("\u4e00" <= ch <= "\u9fff" for ch in body["message"])


async def test_one_ticket_in_and_out_of_scope(api) -> None:
    n = api.rig.numbers
    status, body = await call(api, "shengze", "GET", f"/tickets/{n['waiting']}")
    assert status == 200 and body["phone"] == "13900000001"  # the citizen agreed to share it
    assert body["voice_text"] == ["路灯不亮已经一个星期了"] and body["media_urls"] == ["http://127.0.0.1:9/photo.jpg"]
    assert body["timeline"][0]["kind"] == "filed"
    _, body = await call(api, "shengze", "GET", f"/tickets/{n['late']}")
    assert body["phone"] is None  # did not agree
    missing = await call(api, "shengze", "GET", "/tickets/999999")
    outside = await call(api, "shengze", "GET", f"/tickets/{n['other_town']}")
    assert missing == outside and missing[0] == 404
    assert (await call(api, "nanma", "GET", f"/tickets/{n['waiting']}"))[0] == 404
    assert (await call(api, "qu", "GET", f"/tickets/{n['other_town']}"))[0] == 200
    assert (await call(api, "qu", "GET", "/tickets/abc"))[0] == 404


async def test_notes_are_scoped_validated_and_audited(api, sql_uow_factory) -> None:
    n = api.rig.numbers["assigned"]
    status, body = await call(api, "nanma", "POST", f"/tickets/{n}/notes", json={"text": "已电话联系物业"})
    assert status == 201 and body["author"] == "nanma" and body["text"] == "已电话联系物业"
    _, ticket = await call(api, "nanma", "GET", f"/tickets/{n}")
    assert [x["text"] for x in ticket["notes"]] == ["已电话联系物业"]
    assert (await call(api, "nanma", "POST", f"/tickets/{api.rig.numbers['late']}/notes", json={"text": "x"}))[0] == 404
    assert (await call(api, "nanma", "POST", f"/tickets/{n}/notes", json={"text": "  "}))[0] == 400
    assert (await call(api, "nanma", "POST", f"/tickets/{n}/notes", json={"text": "长" * 1001}))[0] == 400
    assert (await call(api, "nanma", "POST", f"/tickets/{n}/notes", data="not json"))[0] == 400
    assert (await call(api, "nanma", "POST", f"/tickets/{n}/notes", json=["text"]))[0] == 400
    async with sql_uow_factory() as uow:
        log = await uow.audit.page(0, 5)
        outbox = await uow.outbox.list(("pending", "held", "failed", "sent"))
    assert (log.entries[0].action, log.entries[0].actor, log.entries[0].target) == ("note_added", "nanma", f"ticket:{n}")
    assert outbox == []  # an internal note is never sent to anyone


async def test_stations_deputies_duty_and_stats(api) -> None:
    _, body = await call(api, "shengze", "GET", "/stations")
    assert [s["code"] for s in body["items"]] == ["SZ-01", "SZ-02"]
    _, body = await call(api, "qu", "GET", "/stations?q=开弦弓")
    assert [s["code"] for s in body["items"]] == ["QD-01"]
    _, body = await call(api, "shengze", "GET", "/deputies")
    assert {(d["code"], d["bound"]) for d in body["items"]} == {("D101", True), ("D102", False)}
    assert (await call(api, "shengze", "GET", "/deputies?station=QD-01"))[0] == 404
    _, body = await call(api, "qu", "GET", "/duty")
    assert {(s["station_code"], s["deputy_name"]) for s in body["items"]} == {("SZ-01", "沈建国"), ("QD-01", "陈志明")}
    _, body = await call(api, "shengze", "GET", "/duty?station=SZ-01")
    assert [s["end"] for s in body["items"]] == ["12:00"]
    assert (await call(api, "shengze", "GET", "/duty?station=QD-01"))[0] == 404
    _, body = await call(api, "qu", "GET", "/stats/tickets?by=town")
    assert [(i["key"], i["count"]) for i in body["items"]] == [("盛泽镇", 9), ("七都镇", 1)]
    _, body = await call(api, "nanma", "GET", "/stats/tickets?by=status")
    assert body["items"] == [{"key": "assigned", "label": "assigned", "count": 1}] and body["total"] == 1
    for by in ("station", "category", "month"):
        assert (await call(api, "qu", "GET", f"/stats/tickets?by={by}"))[0] == 200
    assert (await call(api, "qu", "GET", "/stats/tickets?by=weather"))[0] == 400


async def test_tokens_and_the_openapi_document(api) -> None:
    assert (await call(api, "", "GET", "/tickets"))[0] == 401
    status, body = await call(api, "qu", "GET", "/no-such-thing")
    assert status == 404 and body["error"] == "not_found"
    status, body = await call(api, "qu", "DELETE", "/tickets")
    assert status == 405 and body["error"] == "method_not_allowed"
    async with api.get("/api/v1/tickets", headers={"Authorization": "Bearer ztc_forged"}) as r:
        assert r.status == 401 and "令牌" in (await r.json())["message"]
    async with api.get("/api/v1/openapi.json") as r:
        doc = await r.json()
    routes = {(m.upper(), "/api/v1" + p) for p, ops in doc["paths"].items() for m in ops}
    served = {(r.method, r.resource.canonical) for r in api.rig.app._subapps[1].router.routes()
              if r.method != "HEAD" and r.name != "openapi"}
    assert routes == served


async def test_responses_match_the_openapi_document(api) -> None:
    from jsonschema import Draft202012Validator

    async with api.get("/api/v1/openapi.json") as r:
        doc = await r.json()
    Draft202012Validator.check_schema({"components": doc["components"]})

    def check(path: str, method: str, status: int, body: object) -> None:
        content = doc["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
        Draft202012Validator({"components": doc["components"], **content}).validate(body)

    n = api.rig.numbers
    for who in ("qu", "shengze", "nanma"):
        for template, path in (("/tickets", "/tickets?per_page=100"), ("/stations", "/stations"),
                               ("/deputies", "/deputies"), ("/duty", "/duty"),
                               ("/stats/tickets", "/stats/tickets?by=month")):
            status, body = await call(api, who, "GET", path)
            check(template, "get", status, body)
    for name in ("waiting", "late", "resolved0"):
        status, body = await call(api, "qu", "GET", f"/tickets/{n[name]}")
        check("/tickets/{number}", "get", status, body)
    status, body = await call(api, "qu", "POST", f"/tickets/{n['late']}/notes", json={"text": "核实中"})
    check("/tickets/{number}/notes", "post", status, body)
    for status_path in ("/tickets?page=0", "/tickets/999999"):
        status, body = await call(api, "qu", "GET", status_path)
        check("/tickets", "get", status, body)
