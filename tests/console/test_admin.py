"""Stations and deputies administration over HTTP: the import preview and save, edits (audited,
scoped, concurrent edits told to reload), the bind-code slip and unbinding a deputy's WeChat."""
from __future__ import annotations

import io
import re

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from openpyxl import Workbook
from rig import PASSWORD, build_rig

from bot.console.admin_import import IMPORT_MAX_BYTES
from bot.core.outbound import OutboxStatus


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


@pytest.fixture
async def rig(sql_uow_factory):
    rig = await build_rig(sql_uow_factory)
    rig.uow_factory = sql_uow_factory
    return rig


async def signed_in(rig, username: str) -> TestClient:
    client = TestClient(TestServer(rig.app))
    await client.start_server()
    async with client.get("/console/login") as r:
        token = csrf_of(await r.text())
    async with client.post("/console/login", data={"username": username, "password": PASSWORD, "csrf": token}) as r:
        assert r.status == 200
    return client


async def page(client: TestClient, url: str, status: int = 200) -> str:
    async with client.get(url) as r:
        text = await r.text()
        assert r.status == status, text
        return text


async def post(client: TestClient, url: str, data: dict | FormData, status: int = 200, csrf_from: str = "") -> str:
    token = csrf_of(await page(client, csrf_from or "/console/"))
    if isinstance(data, FormData):
        data.add_field("csrf", token)
    else:
        data = {**data, "csrf": token}
    async with client.post(url, data=data) as r:
        text = await r.text()
        assert r.status == status, text
        return text


def upload(kind: str, name: str, body: bytes) -> FormData:
    form = FormData()
    form.add_field("kind", kind)
    form.add_field("file", body, filename=name, content_type="application/octet-stream")
    return form


def rows_of(html: str, table: str) -> list[str]:
    body = re.search(rf'<table class="list {table}">(.*?)</table>', html, re.S).group(1)
    return [re.sub(r"<[^>]+>", " ", row).split() for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)][1:]


# an office PC's Excel saves CSV as GBK, with Chinese headers
DEPUTIES_GBK = ("编号,姓名,级别,站点编号,手机\n"
                "D301,钱新华,区,SZ-01,13800000301\n"
                "D302,孙丽,乡,SZ-01,13800000302\n"
                "D303,周强,镇,SZ-99,\n"
                "D101,沈建国,区,SZ-01,13800000999\n").encode("gbk")


async def test_import_preview_lists_bad_rows_then_saves_only_the_good(rig) -> None:
    client = await signed_in(rig, "qu")
    async with client:
        assert "导入表格" in await page(client, "/console/deputies")
        preview = await post(client, "/console/import", upload("deputies", "代表名单.csv", DEPUTIES_GBK))
        bad = rows_of(preview, "bad-rows")
        assert [r[:3] for r in bad] == [["第", "3", "行"], ["第", "4", "行"]]
        assert "级别" in " ".join(bad[0]) and "乡" in " ".join(bad[0])
        assert "SZ-99" in " ".join(bad[1])
        good = rows_of(preview, "good-rows")
        assert [(r[1], r[3], r[4]) for r in good] == [("2", "新增", "D301"), ("5", "修改", "D101")]
        assert "保存可以导入的 2 行" in preview
        async with rig.uow_factory() as uow:  # a preview stores nothing
            assert await uow.deputies.get("D301") is None
            assert (await uow.deputies.get("D101")).phone == "13800000101"

        upload_id = re.search(r'name="upload" value="([^"]+)"', preview).group(1)
        saved = await post(client, "/console/import/save", {"upload": upload_id}, csrf_from="/console/import")
        assert "新增 1，修改 1，没有变化 0，跳过有问题的 2 行" in saved
        async with rig.uow_factory() as uow:
            assert (await uow.deputies.get("D301")).name == "钱新华"
            assert await uow.deputies.get("D302") is None and await uow.deputies.get("D303") is None
            d101 = await uow.deputies.get("D101")
            assert (d101.phone, d101.openid) == ("13800000999", "oid-d101")  # the binding stays
            entries = (await uow.audit.page(0, 5)).entries
        assert entries[0].action == "import_saved" and entries[0].actor == "qu" and "新增 1" in entries[0].after
        # saving twice is refused: the upload is gone
        again = await post(client, "/console/import/save", {"upload": upload_id}, status=410, csrf_from="/console/import")
        assert "已过期或已经保存过了" in again


async def test_not_a_spreadsheet_and_too_big_get_a_clear_message(rig) -> None:
    client = await signed_in(rig, "qu")
    async with client:
        pdf = await post(client, "/console/import", upload("stations", "名单.pdf", b"%PDF-1.4"), status=400)
        assert "不是能读取的表格文件" in pdf and "另存为" in pdf
        fake = await post(client, "/console/import", upload("stations", "名单.xlsx", b"just text"), status=400)
        assert "不是能读取的表格文件" in fake
        broken = await post(client, "/console/import", upload("stations", "名单.xlsx", b"PK\x03\x04broken"), status=400)
        assert "不是能读取的表格文件" in broken and "zip" not in broken.lower()
        huge = b"code,name,kind,town\n" + b"X" * (IMPORT_MAX_BYTES + 10)
        too_big = await post(client, "/console/import", upload("stations", "大表.csv", huge), status=413)
        assert "文件太大了" in too_big
        header = await post(client, "/console/import", upload("stations", "表.csv", "名字,地方\n甲,乙\n".encode()),
                            status=400)
        assert "表头" in header or "缺少" in header
        nothing = await post(client, "/console/import", FormData({"kind": "stations"}), status=400)
        assert "请先选择要导入的文件" in nothing


async def test_an_xlsx_preview_and_town_staff_only_import_their_town(rig) -> None:
    book = Workbook()
    sheet = book.active
    for row in (["编号", "名称", "类型", "镇街"], ["SZ-03", "盛泽镇新联络站", "站", "盛泽镇"],
                ["QD-09", "七都镇新站", "站", "七都镇"], ["QD-01", "改名", "站", "盛泽镇"]):
        sheet.append(row)
    data = io.BytesIO()
    book.save(data)
    client = await signed_in(rig, "shengze")
    async with client:
        preview = await post(client, "/console/import", upload("stations", "站点.xlsx", data.getvalue()))
        bad = {r[1]: " ".join(r) for r in rows_of(preview, "bad-rows")}
        assert set(bad) == {"3", "4"} and all("七都镇的，不属于盛泽镇" in v for v in bad.values())
        assert [r[4] for r in rows_of(preview, "good-rows")] == ["SZ-03"]


async def test_station_edit_is_audited_scoped_and_a_stale_form_is_told_to_reload(rig) -> None:
    client = await signed_in(rig, "shengze")
    async with client:
        assert "修改" in await page(client, "/console/stations")
        form = await page(client, "/console/stations/SZ-01/edit")
        version = re.search(r'name="version" value="([^"]+)"', form).group(1)
        await page(client, "/console/stations/QD-01/edit", status=404)  # another town
        data = {"name": "盛泽镇东方社区代表联络站", "kind": "站", "town": "七都镇", "address": "东方路1号",
                "places": "东方社区、西白漾村", "specialties": "", "version": version}
        saved = await post(client, "/console/stations/SZ-01/edit", data, csrf_from="/console/stations/SZ-01/edit")
        assert "已保存" in saved
        async with rig.uow_factory() as uow:
            station = await uow.stations.get("SZ-01")
            entry = (await uow.audit.page(0, 1)).entries[0]
        assert (station.name, station.town, station.places) == ("盛泽镇东方社区代表联络站", "盛泽镇", ("东方社区", "西白漾村"))
        assert (entry.actor, entry.action, entry.target) == ("shengze", "station_edited", "station:SZ-01")
        assert entry.before == "名称：盛泽镇东方社区联络站；服务村社区：" and "西白漾村" in entry.after

        # the form opened before that save is out of date: told to reload, nothing overwritten
        stale = await post(client, "/console/stations/SZ-01/edit", {**data, "name": "旧表单"}, status=409,
                           csrf_from="/console/stations/SZ-01/edit")
        assert "别人已经改过" in stale and "重新打开" in stale
        bad = await post(client, "/console/stations/SZ-01/edit", {**data, "name": "", "kind": "所"}, status=400,
                         csrf_from="/console/stations/SZ-01/edit")
        assert "不能为空" in bad
        async with rig.uow_factory() as uow:
            assert (await uow.stations.get("SZ-01")).name == "盛泽镇东方社区代表联络站"
    station_client = await signed_in(rig, "nanma")
    async with station_client:
        await page(station_client, "/console/stations/SZ-02/edit", status=404)
        await page(station_client, "/console/import", status=404)


async def test_deputy_edit_checks_the_phone_like_the_import(rig) -> None:
    client = await signed_in(rig, "qu")
    async with client:
        form = await page(client, "/console/deputies/D102/edit")
        version = re.search(r'name="version" value="([^"]+)"', form).group(1)
        data = {"name": "王秀英", "level": "镇", "station_code": "SZ-01", "phone": "12345", "version": version}
        bad = await post(client, "/console/deputies/D102/edit", data, status=400, csrf_from="/console/deputies/D102/edit")
        assert "12345" in bad and ("电话" in bad or "手机" in bad)
        await post(client, "/console/deputies/D102/edit", {**data, "phone": "139 0000 0102"},
                   csrf_from="/console/deputies/D102/edit")
        async with rig.uow_factory() as uow:
            deputy = await uow.deputies.get("D102")
            entry = (await uow.audit.page(0, 1)).entries[0]
        assert (deputy.station_code, deputy.phone) == ("SZ-01", "13900000102")
        assert entry.action == "deputy_edited" and "SZ-02" in entry.before and "SZ-01" in entry.after
        assert "修改代表信息" in await page(client, "/console/audit?page=²")  # "²".isdigit(), int("²") fails


async def test_bind_code_slip_and_unbind(rig) -> None:
    client = await signed_in(rig, "shengze")
    async with client:
        slip = await post(client, "/console/deputies/D102/bind-code", {}, csrf_from="/console/deputies/D102/edit")
        code = re.search(r"绑定 (\d{6})", slip).group(1)
        assert "王秀英代表" in slip and "24 小时内有效" in slip
        async with rig.uow_factory() as uow:
            assert await uow.bind_codes.consume(code, rig.clock.now()) == "D102"  # the code the chat accepts
        await post(client, "/console/deputies/D201/bind-code", {}, status=404)  # another town's deputy
        await post(client, "/console/deputies/D201/unbind", {}, status=404)

        done = await post(client, "/console/deputies/D101/unbind", {}, csrf_from="/console/deputies/D101/edit")
        assert "已解除沈建国代表的微信绑定" in done
        async with rig.uow_factory() as uow:
            assert (await uow.deputies.get("D101")).openid is None
            told = [m for m in await uow.outbox.list([OutboxStatus.PENDING]) if m.recipient_openid == "oid-d101"]
            entries = [e.action for e in (await uow.audit.page(0, 5)).entries]
        assert len(told) == 1 and "解除" in told[0].text and "绑定" in told[0].text
        assert entries[:2] == ["deputy_unbound", "bind_code_issued"]
        again = await post(client, "/console/deputies/D101/unbind", {}, csrf_from="/console/deputies/D101/edit")
        assert "没有绑定微信" in again
