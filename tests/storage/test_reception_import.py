"""Importing a month's reception rota: GBK and Chinese headers, XLSX, line-numbered errors, upsert."""
from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

from openpyxl import Workbook

from bot.core.receptions import Reception
from storage.importer import import_file

NOW = datetime(2026, 12, 1, 9, 0)
STATIONS_CSV = """code,name,kind,town
S-SZ,盛泽镇代表之家,家,盛泽镇
S-LL,黎里镇代表之家,家,黎里镇
"""
DEPUTIES_CSV = """code,name,level,station_code
D001,王一（虚构）,区,S-SZ
D002,李二（虚构）,镇,S-SZ
D003,赵三（虚构）,区,S-LL
"""
# line 2 good (two deputies); 3 good; 4 past; 5 end before start; 6 unknown deputy;
# 7 D001 clashes with line 2; 8 unknown station; 9 the same key as line 2 in this file
RECEPTIONS_CSV = """站点编号,代表编号,日期,开始时间,结束时间,接待主题,接待地点,直播链接,人数上限
S-SZ,D001、D002,2026-12-05,09:00,11:00,主题接待：养老服务,盛泽镇代表之家,,30
S-LL,D003,2026/12/12,14:00,16:00,主题接待：农村道路,黎里镇代表之家,https://live.example/1,
S-LL,D003,2026-11-30,09:00,11:00,过去的,黎里,,
S-LL,D003,2026-12-13,11:00,09:00,倒过来的,黎里,,
S-LL,D404,2026-12-14,09:00,11:00,没有这位代表,黎里,,
S-LL,D001,2026-12-05,10:00,12:00,撞车的,黎里,,
S-NONE,D003,2026-12-15,09:00,11:00,没有这个站,黎里,,
S-SZ,D001,2026-12-05,09:00,11:00,同一场,盛泽,,
"""


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


async def seed(uow_factory, tmp_path: Path) -> None:
    for kind, text in (("stations", STATIONS_CSV), ("deputies", DEPUTIES_CSV)):
        assert (await import_file(uow_factory, kind, write(tmp_path, f"{kind}.csv", text))).ok


async def test_gbk_chinese_headers_line_numbered_errors_good_rows_kept(uow_factory, tmp_path: Path) -> None:
    await seed(uow_factory, tmp_path)
    path = write(tmp_path, "rota.csv", RECEPTIONS_CSV, "gbk")
    report = await import_file(uow_factory, "receptions", path, now=NOW)
    assert (report.rows_read, report.created) == (8, 2)
    by_line = {line: message for line, message in report.errors}
    assert sorted(by_line) == [4, 5, 6, 7, 8, 9]
    assert "已经过去" in by_line[4]
    assert "结束时间" in by_line[5] and "开始时间" in by_line[5]
    assert "代表编号" in by_line[6]
    assert "D001" in by_line[7] and "冲突" in by_line[7]
    assert "站点编号" in by_line[8]
    assert "第2行" in by_line[9]
    async with uow_factory() as uow:
        stored = await uow.receptions.between(date(2026, 12, 1))
    assert [(r.station_code, r.deputy_codes, r.day, r.capacity, r.live_url) for r in stored] == [
        ("S-SZ", ("D001", "D002"), date(2026, 12, 5), 30, ""),
        ("S-LL", ("D003",), date(2026, 12, 12), None, "https://live.example/1"),
    ]


async def test_reimport_is_an_upsert(uow_factory, tmp_path: Path) -> None:
    await seed(uow_factory, tmp_path)
    good = "\n".join(RECEPTIONS_CSV.splitlines()[:3]) + "\n"
    path = write(tmp_path, "rota.csv", good)
    assert (await import_file(uow_factory, "receptions", path, now=NOW)).created == 2
    again = await import_file(uow_factory, "receptions", path, now=NOW)
    assert (again.created, again.updated, again.unchanged, again.errors) == (0, 0, 2, [])
    edited = write(tmp_path, "rota2.csv", good.replace("主题接待：养老服务", "主题接待：医保"))
    third = await import_file(uow_factory, "receptions", edited, now=NOW)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 1)
    async with uow_factory() as uow:
        first = await uow.receptions.by_key("S-SZ", date(2026, 12, 5), time(9))
    assert isinstance(first, Reception) and first.topic == "主题接待：医保"


async def test_xlsx_with_typed_cells(uow_factory, tmp_path: Path) -> None:
    await seed(uow_factory, tmp_path)
    book = Workbook()
    sheet = book.active
    sheet.append(["station_code", "deputy_codes", "date", "start", "end", "topic", "place"])
    sheet.append(["S-SZ", "D001;D002", datetime(2026, 12, 5), time(9), time(11), "主题接待", "盛泽镇代表之家"])
    path = tmp_path / "rota.xlsx"
    book.save(path)
    report = await import_file(uow_factory, "receptions", path, now=NOW)
    assert (report.created, report.errors) == (1, [])


async def test_a_reimport_that_moves_the_place_tells_those_already_told(uow_factory, tmp_path: Path) -> None:
    await seed(uow_factory, tmp_path)
    good = "\n".join(RECEPTIONS_CSV.splitlines()[:3]) + "\n"
    await import_file(uow_factory, "receptions", write(tmp_path, "rota.csv", good), now=NOW)
    async with uow_factory() as uow:
        first = await uow.receptions.by_key("S-SZ", date(2026, 12, 5), time(9))
        await uow.reminders.claim(first.id, "announce_1", ["oFollower1", "oFollower2"], NOW)  # an announcement went
        await uow.commit()
    await import_file(uow_factory, "receptions", write(tmp_path, "rota2.csv", good.replace(
        "主题接待：养老服务", "主题接待：医保")), now=NOW)  # the topic alone
    moved = good.replace(",主题接待：养老服务,盛泽镇代表之家,", ",主题接待：养老服务,盛泽镇文化中心,")
    report = await import_file(uow_factory, "receptions", write(tmp_path, "rota3.csv", moved), now=NOW)
    assert report.updated == 1
    async with uow_factory() as uow:
        told = [m for m in await uow.outbox.list() if m.text.startswith("【接待调整】")]
    assert sorted(m.recipient_openid for m in told) == ["oFollower1", "oFollower2"]
    assert "盛泽镇文化中心" in told[0].text
