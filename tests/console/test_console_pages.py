"""The console over HTTP: sign-in rules, CSRF, scope (404 as for a missing page), pages and exports."""
from __future__ import annotations

import csv
import io
import re

import pyotp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from openpyxl import load_workbook
from rig import PASSWORD, build_rig

from bot.core.staff import MAX_FAILED_LOGINS


async def _client(rig):
    return TestClient(TestServer(rig.app))


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


async def login(client, username: str, password: str = PASSWORD, expect: int = 200):
    async with client.get("/console/login") as r:
        token = csrf_of(await r.text())
    async with client.post("/console/login", data={"username": username, "password": password, "csrf": token}) as r:
        assert r.status == expect, await r.text()
        return await r.text()


@pytest.fixture
async def rig(sql_uow_factory):
    return await build_rig(sql_uow_factory)


async def test_cookie_is_encrypted_httponly_samesite(rig) -> None:
    async with await _client(rig) as client:
        async with client.get("/console/login") as r:
            cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/console" in cookie
        assert "csrf" not in cookie  # the content is encrypted (Fernet)


async def test_wrong_password_one_message_and_a_wait_after_five(rig) -> None:
    async with await _client(rig) as client:
        unknown = await login(client, "nobody", expect=401)
        wrong = await login(client, "qu", "错误的密码", expect=401)
        assert "用户名或密码不对" in unknown and "用户名或密码不对" in wrong
        for _ in range(MAX_FAILED_LOGINS - 2):
            await login(client, "qu", "错误的密码", expect=401)
        assert "5 分钟后再试" in await login(client, "qu", "错误的密码", expect=401)
        assert "5 分钟后再试" in await login(client, "qu", expect=401)  # even the right one waits
        rig.clock.at = rig.clock.at.replace(minute=rig.clock.at.minute + 6)
        assert "工作台" in await login(client, "qu")


async def test_post_without_csrf_is_403(rig) -> None:
    async with await _client(rig) as client:
        async with client.post("/console/login", data={"username": "qu", "password": PASSWORD}) as r:
            assert r.status == 403 and "页面已过期" in await r.text()
        await login(client, "qu")
        number = rig.numbers["waiting"]
        async with client.post(f"/console/tickets/{number}/notes", data={"text": "备注", "csrf": "forged"}) as r:
            assert r.status == 403
        async with client.post("/console/logout") as r:
            assert r.status == 403


async def test_first_login_must_change_password(sql_uow_factory) -> None:
    rig = await build_rig(sql_uow_factory, must_change=True)
    async with await _client(rig) as client:
        html = await login(client, "shengze")
        assert "第一次登录" in html
        async with client.get("/console/tickets") as r:
            assert r.url.path == "/console/password"
        token = csrf_of(html)
        async with client.post("/console/password", data={"csrf": token, "current": PASSWORD, "new": "abcdefgh9",
                                                         "repeat": "abcdefgh0"}) as r:
            assert r.status == 400 and "不一样" in await r.text()
        async with client.post("/console/password", data={"csrf": token, "current": PASSWORD, "new": "abcdefgh9",
                                                         "repeat": "abcdefgh9"}) as r:
            assert r.status == 200 and r.url.path == "/console/"
        async with client.get("/console/tickets") as r:
            assert r.url.path == "/console/tickets"


async def test_totp_for_district_accounts(rig, sql_uow_factory) -> None:
    secret = pyotp.random_base32()
    async with sql_uow_factory() as uow:
        account = await uow.staff.get("qu")
        account.totp_secret = secret
        await uow.staff.save(account)
        await uow.commit()
    async with await _client(rig) as client:
        html = await login(client, "qu")
        assert "动态验证码" in html
        async with client.get("/console/tickets") as r:
            assert r.url.path == "/console/login"  # the password alone does not sign in
        async with client.get("/console/totp") as r:
            token = csrf_of(await r.text())
        async with client.post("/console/totp", data={"csrf": token, "code": "000000"}) as r:
            assert r.status == 401
        async with client.post("/console/totp", data={"csrf": token, "code": pyotp.TOTP(secret).now()}) as r:
            assert r.url.path == "/console/"


async def test_scope_404_exactly_as_missing(rig) -> None:
    async with await _client(rig) as client:
        await login(client, "shengze")
        async with client.get("/console/tickets/999999") as r:
            missing = (r.status, await r.text())
        async with client.get(f"/console/tickets/{rig.numbers['other_town']}") as r:
            outside = (r.status, await r.text())
        assert missing == outside and missing[0] == 404
        for path in ("/console/stations/QD-01/week", "/console/audit", "/console/no-such-page"):
            async with client.get(path) as r:
                assert r.status == 404 and "没有找到这个页面" in await r.text()
        async with client.get("/console/tickets?tab=all") as r:
            html = await r.text()
        assert "七都镇的桥栏杆断了" not in html and "路灯坏了三盏" in html


async def test_pages_render_with_data(rig) -> None:
    async with await _client(rig) as client:
        await login(client, "qu")
        n = rig.numbers
        pages = {
            "/console/": ["各镇（街道）工单数", "沈建国", "样本不足"],
            "/console/tickets?tab=waiting": ["路灯坏了三盏", "等待分配代表"],
            "/console/tickets?tab=late": ["垃圾桶满了没人清"],
            f"/console/tickets/{n['waiting']}": ["东方路北段晚上一片漆黑", "路灯不亮已经一个星期了", "13900000001",
                                                 "photo.jpg"],
            f"/console/tickets/{n['late']}": ["群众没有同意公开联系方式"],
            "/console/stations?q=南麻": ["盛泽镇南麻联络站"],
            "/console/deputies?bound=no": ["王秀英", "未绑定"],
            "/console/duty": ["沈建国", "到 12:00", "现在没有代表值班"],
            "/console/stations/SZ-02/week?week=2026-12-01": ["王秀英", "14:00–17:00", "星期三"],
            "/console/audit": ["新建账号", "生成接口令牌"],
        }
        for path, expected in pages.items():
            async with client.get(path) as r:
                html = await r.text()
                assert r.status == 200, path
            for text in expected:
                assert text in html, (path, text)
            assert "13900000002" not in html  # the citizen who did not agree
        async with client.get("/console/tickets?since=bad") as r:
            assert r.status == 400 and "日期格式不对" in await r.text()


async def test_note_from_the_ticket_page(rig) -> None:
    async with await _client(rig) as client:
        html = await login(client, "nanma")
        number = rig.numbers["assigned"]
        async with client.post(f"/console/tickets/{number}/notes", data={"csrf": csrf_of(html), "text": "明天去现场看"}) as r:
            page = await r.text()
        assert r.url.path == f"/console/tickets/{number}" and "明天去现场看" in page and "内部备注" in page
        async with client.post(f"/console/tickets/{rig.numbers['waiting']}/notes",
                               data={"csrf": csrf_of(html), "text": "x"}) as r:
            assert r.status == 404


async def test_every_list_exports_xlsx_and_csv(rig) -> None:
    async with await _client(rig) as client:
        await login(client, "qu")
        for path, first_header, rows in (("/console/tickets?tab=resolved", "工单号", 6),
                                         ("/console/stations", "编号", 3), ("/console/deputies", "编号", 3),
                                         ("/console/audit", "时间", 6)):
            sep = "&" if "?" in path else "?"
            async with client.get(f"{path}{sep}export=csv") as r:
                assert r.status == 200 and "filename*=UTF-8''" in r.headers["Content-Disposition"]
                table = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
            assert table[0][0] == first_header and len(table) == rows + 1, path
            async with client.get(f"{path}{sep}export=xlsx") as r:
                sheet = load_workbook(io.BytesIO(await r.read())).active
            assert sheet.max_row == rows + 1 and sheet.cell(1, 1).value == first_header


async def test_pushes_nobody_received_are_listed_for_the_stations_in_scope(rig, sql_uow_factory) -> None:
    from datetime import datetime

    from bot.core.outbound import PushFailure

    async with sql_uow_factory() as uow:  # as handlers/failures.py files them
        await uow.outbox.record_failure(PushFailure(
            message_id=9001, station_code="SZ-01", ticket_number=rig.numbers["waiting"],
            recipient_openid="oCitizenSZ0000000001", error="WeChat API error 43004: require subscribe",
            failed_at=datetime(2026, 12, 1, 9, 0)))
        await uow.outbox.record_failure(PushFailure(
            message_id=9002, station_code="QD-01", ticket_number=rig.numbers["other_town"],
            recipient_openid="oCitizenQD0000000002", error="WeChat API error 43004: require subscribe",
            failed_at=datetime(2026, 12, 1, 9, 5)))
        await uow.commit()
    async with await _client(rig) as client:
        await login(client, "shengze")
        async with client.get("/console/failures") as r:
            html = await r.text()
        assert r.status == 200 and "送不到的消息" in html and "请打电话联系对方" in html
        assert f"#{rig.numbers['waiting']}" in html and f"#{rig.numbers['other_town']}" not in html  # 七都镇's
        assert "oCitizenSZ0000000001" not in html  # the citizen masked
        assert "还没有" in html and "43004" not in html  # the reason in words, not WeChat's code
    async with await _client(rig) as client:
        await login(client, "qu")
        async with client.get("/console/failures") as r:
            html = await r.text()
        assert f"#{rig.numbers['waiting']}" in html and f"#{rig.numbers['other_town']}" in html
