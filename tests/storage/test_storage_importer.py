"""Importing stations, deputies and the duty roster from real CSV and XLSX files."""
from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path

import pytest
from openpyxl import Workbook

from bot.core.people import Station, StationKind
from storage.importer import END_OF_DAY, import_file

STATIONS_CSV = """code,name,kind,town,address,specialties,places
S-SL,松陵街道代表之家,家,松陵,松陵街道中山路1号,,江兴社区;梅里村
S-KFQ-LD,开发区劳动保障联络站,站,开发区,运东大道8号,劳动和社会保障；政法,长安社区；花港社区
S-BAD1,坏站点,站点,松陵,,,
S-BAD2,,点,松陵,,不存在的类别,
S-QD,七都镇渔民安置联系点,点,七都,,民政,渔业村
"""

DEPUTIES_CSV = """code,name,level,station_code,phone
D001,王一（虚构）,区,S-SL,138 0000 0001
D002,李二（虚构）,镇,S-KFQ-LD,0512-63001234
D003,赵三（虚构）,省,S-QD,
D004,钱四（虚构）,乡,S-SL,13800000004
D005,孙五（虚构）,区,S-NOWHERE,13800000005
D006,周六（虚构）,区,S-SL,12345
D007,吴七（虚构）,全国,S-SL,+8613900000007
"""

DUTY_CSV = """station_code,deputy_code,day,start,end
S-SL,D001,1,09:00,12:00
S-SL,D001,2026-12-01,14:00,24:00
S-KFQ-LD,D002,7,0:00,24:00
S-SL,D001,8,09:00,12:00
S-SL,D001,3,12:00,09:00
S-SL,D001,3,25:00,26:00
S-SL,D404,3,09:00,12:00
S-SL,D001,1,09:00,17:00
"""


def write(tmp_path: Path, name: str, text: str, bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def write_xlsx(tmp_path: Path, name: str, rows: list[list[object]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    workbook.create_sheet("ignored").append(["not", "read"])
    path = tmp_path / name
    workbook.save(path)
    return path


async def import_all(uow_factory, tmp_path: Path) -> None:
    for kind, text in (("stations", STATIONS_CSV), ("deputies", DEPUTIES_CSV)):
        await import_file(uow_factory, kind, write(tmp_path, f"{kind}.csv", text))


def lines(report) -> list[int]:
    return [line for line, _ in report.errors]


async def test_stations_csv_good_rows_in_bad_rows_reported(uow_factory, tmp_path: Path) -> None:
    path = write(tmp_path, "stations.csv", STATIONS_CSV, bom=True)
    report = await import_file(uow_factory, "stations", path)

    assert (report.rows_read, report.created, report.updated, report.unchanged) == (5, 3, 0, 0)
    assert lines(report) == [4, 5, 5]
    messages = dict(report.errors[:1])
    assert "kind" in messages[4] and "站点" in messages[4]
    line5 = [m for line, m in report.errors if line == 5]
    assert any("name" in m and "不能为空" in m for m in line5)
    assert any("specialties" in m and "不存在的类别" in m for m in line5)

    async with uow_factory() as uow:
        assert [s.code for s in await uow.stations.list()] == ["S-KFQ-LD", "S-QD", "S-SL"]
        labour = await uow.stations.get("S-KFQ-LD")
    assert labour == Station(
        "S-KFQ-LD", "开发区劳动保障联络站", StationKind.STATION, "开发区", "运东大道8号",
        ("劳动和社会保障", "政法"), ("长安社区", "花港社区"),
    )


async def test_reimport_changes_nothing_and_edits_count_as_updates(uow_factory, tmp_path: Path) -> None:
    path = write(tmp_path, "stations.csv", STATIONS_CSV)
    await import_file(uow_factory, "stations", path)
    again = await import_file(uow_factory, "stations", path)
    assert (again.rows_read, again.created, again.updated, again.unchanged) == (5, 0, 0, 3)
    assert len(again.errors) == 3  # the bad rows are still bad

    edited = write(tmp_path, "edited.csv", STATIONS_CSV.replace("江兴社区;梅里村", "江兴社区;梅里村;城南社区"))
    third = await import_file(uow_factory, "stations", edited)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 2)
    async with uow_factory() as uow:
        assert (await uow.stations.get("S-SL")).places == ("江兴社区", "梅里村", "城南社区")


async def test_dry_run_reports_the_same_and_stores_nothing(uow_factory, tmp_path: Path) -> None:
    path = write(tmp_path, "stations.csv", STATIONS_CSV)
    preview = await import_file(uow_factory, "stations", path, dry_run=True)
    assert (preview.rows_read, preview.created, preview.updated, preview.unchanged) == (5, 3, 0, 0)
    assert [(r.line, r.outcome, r.item.code) for r in preview.rows] == [
        (2, "created", "S-SL"), (3, "created", "S-KFQ-LD"), (6, "created", "S-QD")]
    async with uow_factory() as uow:
        assert await uow.stations.list() == []
    saved = await import_file(uow_factory, "stations", path)
    assert (saved.errors, [r.item for r in saved.rows]) == (preview.errors, [r.item for r in preview.rows])


async def test_a_callers_check_refuses_rows_like_bad_ones(uow_factory, tmp_path: Path) -> None:
    path = write(tmp_path, "stations.csv", STATIONS_CSV)
    report = await import_file(uow_factory, "stations", path,
                               check=lambda station: "不是本镇" if station.town != "松陵" else None)
    assert (report.created, [line for line, m in report.errors if m == "不是本镇"]) == (1, [3, 6])
    async with uow_factory() as uow:
        assert [s.code for s in await uow.stations.list()] == ["S-SL"]


async def test_deputies_csv(uow_factory, tmp_path: Path) -> None:
    await import_file(uow_factory, "stations", write(tmp_path, "stations.csv", STATIONS_CSV))
    path = write(tmp_path, "deputies.csv", DEPUTIES_CSV)
    report = await import_file(uow_factory, "deputies", path)

    assert (report.rows_read, report.created, report.updated, report.unchanged) == (7, 4, 0, 0)
    by_line = dict(report.errors)
    assert lines(report) == [5, 6, 7]
    assert "level" in by_line[5] and "乡" in by_line[5]
    assert "station_code" in by_line[6] and "S-NOWHERE" in by_line[6] and "请先导入站点" in by_line[6]
    assert "phone" in by_line[7] and "12345" in by_line[7]

    async with uow_factory() as uow:
        phones = {d.code: d.phone for d in await uow.deputies.list()}
        await uow.deputies.bind("D001", "wx-d001")
        await uow.commit()
    assert phones == {"D001": "13800000001", "D002": "0512-63001234", "D003": "", "D007": "13900000007"}

    again = await import_file(uow_factory, "deputies", path)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    async with uow_factory() as uow:
        assert (await uow.deputies.get("D001")).openid == "wx-d001"  # re-import keeps the binding


async def test_duty_csv(uow_factory, tmp_path: Path) -> None:
    await import_all(uow_factory, tmp_path)
    report = await import_file(uow_factory, "duty", write(tmp_path, "duty.csv", DUTY_CSV))

    assert (report.rows_read, report.created, report.updated, report.unchanged) == (8, 3, 0, 0)
    by_line: dict[int, list[str]] = {}
    for line, message in report.errors:
        by_line.setdefault(line, []).append(message)
    assert sorted(by_line) == [5, 6, 7, 8, 9]
    assert "day" in by_line[5][0] and "「8」" in by_line[5][0]
    assert "end" in by_line[6][0] and "09:00" in by_line[6][0]  # end before start
    assert len(by_line[7]) == 2 and "start" in by_line[7][0] and "25:00" in by_line[7][0]
    assert "deputy_code" in by_line[8][0] and "D404" in by_line[8][0]
    assert "第2行" in by_line[9][0]  # same shift twice in one file

    async with uow_factory() as uow:
        shifts = {(s.station_code, s.day, s.start): s for s in await uow.duty.list()}
    assert set(shifts) == {("S-SL", 1, time(9)), ("S-SL", date(2026, 12, 1), time(14)), ("S-KFQ-LD", 7, time(0))}
    all_day = shifts[("S-KFQ-LD", 7, time(0))]
    assert all_day.end == END_OF_DAY
    assert all_day.covers(datetime(2026, 12, 6, 23, 59)) and all_day.covers(datetime(2026, 12, 6, 0, 0))
    assert shifts[("S-SL", date(2026, 12, 1), time(14))].covers(datetime(2026, 12, 1, 23, 30))

    again = await import_file(uow_factory, "duty", write(tmp_path, "duty.csv", DUTY_CSV))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    longer = write(tmp_path, "duty2.csv", "station_code,deputy_code,day,start,end\nS-SL,D001,1,09:00,17:30\n")
    third = await import_file(uow_factory, "duty", longer)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 0)


async def test_xlsx_files_with_typed_cells(uow_factory, tmp_path: Path) -> None:
    stations = write_xlsx(tmp_path, "stations.xlsx", [
        ["code", "name", "kind", "town", "address", "specialties", "places"],
        ["S-BC", "八坼街道健康联络站", "站", "八坼", None, "卫生计生", "龙津村；凌益村"],
        [None, None, None, None, None, None, None],  # blank rows are skipped
        ["S-BAD", "坏", "X", "八坼", None, None, None],
    ])
    report = await import_file(uow_factory, "stations", stations)
    assert (report.rows_read, report.created) == (2, 1)
    assert lines(report) == [4]

    deputies = write_xlsx(tmp_path, "deputies.xlsx", [
        ["code", "name", "level", "station_code", "phone"],
        ["D100", "郑十（虚构）", "区", "S-BC", 13800000100],  # Excel turns phone numbers into numbers
        [101, "冯十一（虚构）", "镇", "S-BC", None],  # and codes too
    ])
    report = await import_file(uow_factory, "deputies", deputies)
    assert (report.rows_read, report.created, report.errors) == (2, 2, [])

    duty = write_xlsx(tmp_path, "duty.xlsx", [
        ["station_code", "deputy_code", "day", "start", "end"],
        ["S-BC", "D100", datetime(2026, 12, 1), time(8, 30), time(11, 30)],
        ["S-BC", 101, 5, "13:00", "24:00"],
        ["S-BC", "D100", "明天", time(8, 30), time(11, 30)],
    ])
    report = await import_file(uow_factory, "duty", duty)
    assert (report.rows_read, report.created) == (3, 2)
    assert lines(report) == [4] and "明天" in report.errors[0][1]

    async with uow_factory() as uow:
        assert (await uow.stations.get("S-BC")).places == ("龙津村", "凌益村")
        assert (await uow.deputies.get("D100")).phone == "13800000100"
        assert (await uow.deputies.get("101")).station_code == "S-BC"
        assert {(s.deputy_code, s.day, s.start, s.end) for s in await uow.duty.list("S-BC")} == {
            ("D100", date(2026, 12, 1), time(8, 30), time(11, 30)),
            ("101", 5, time(13), END_OF_DAY),
        }
    again = await import_file(uow_factory, "duty", duty)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 2)


async def test_header_problems_import_nothing(uow_factory, tmp_path: Path) -> None:
    missing = write(tmp_path, "missing.csv", "code,name,address\nS1,站,松陵\n")
    report = await import_file(uow_factory, "stations", missing)
    assert report.rows_read == 0 and report.created == 0
    assert len(report.errors) == 1 and report.errors[0][0] == 1
    assert "缺少" in report.errors[0][1] and "kind" in report.errors[0][1] and "town" in report.errors[0][1]
    assert "address" not in report.errors[0][1].split("。")[0]  # only what is missing is named

    unknown = write(tmp_path, "unknown.csv", "code,name,level,station_code,phone,wechat\nD1,某,区,S1,,x\n")
    report = await import_file(uow_factory, "deputies", unknown)
    assert report.rows_read == 0
    assert report.errors == [(1, report.errors[0][1])] and "wechat" in report.errors[0][1]

    # columns in any order, header names case- and space-insensitive
    shuffled = write(tmp_path, "shuffled.csv", " Places ,code,kind,name,town,address,specialties\n梅里村,S1,家,松陵代表之家,松陵,,\n")
    report = await import_file(uow_factory, "stations", shuffled)
    assert (report.created, report.errors) == (1, [])
    async with uow_factory() as uow:
        assert (await uow.stations.get("S1")).places == ("梅里村",)
        assert await uow.deputies.list() == []


async def test_unreadable_inputs(uow_factory, tmp_path: Path) -> None:
    empty = await import_file(uow_factory, "stations", write(tmp_path, "empty.csv", "\n\n"))
    assert empty.rows_read == 0 and "表头" in empty.errors[0][1]

    other = await import_file(uow_factory, "stations", write(tmp_path, "stations.txt", "code\n"))
    assert "CSV" in other.errors[0][1] and "XLSX" in other.errors[0][1]

    binary = tmp_path / "binary.csv"
    binary.write_bytes("code,name\n".encode() + b"\xff\xfe\x81 \n")  # neither UTF-8 nor GB18030
    report = await import_file(uow_factory, "stations", binary)
    assert report.created == 0 and "编码" in report.errors[0][1] and "XLSX" in report.errors[0][1]

    broken = await import_file(uow_factory, "stations", write(tmp_path, "broken.xlsx", "not a zip"))
    assert broken.created == 0 and "无法读取" in broken.errors[0][1]

    with pytest.raises(ValueError):
        await import_file(uow_factory, "tickets", write(tmp_path, "t.csv", "code\n"))


async def test_chinese_headers_and_gbk_as_excel_saves_them(uow_factory, tmp_path: Path) -> None:
    stations = tmp_path / "站点.csv"  # Excel on Chinese Windows: "CSV (逗号分隔)" is GBK, CRLF
    stations.write_bytes("编号,名称,类型,镇（街道）,地址,专业领域,服务村（社区）\r\n"
                         "S-HT,湖塘镇代表之家,家,湖塘镇,湖塘路1号,,西村;东村\r\n"
                         "S-BAD,坏站,站点,湖塘镇,,,\r\n".encode("gbk"))
    report = await import_file(uow_factory, "stations", stations)
    assert report.created == 1
    # the bad value is named by the column as the file writes it, on the file's line
    assert report.errors == [(3, report.errors[0][1])] and "类型" in report.errors[0][1] and "站点" in report.errors[0][1]

    deputies = tmp_path / "代表.csv"  # UTF-8 with BOM ("CSV UTF-8"); optional 手机 column left out
    deputies.write_text("代表编号,姓名,级别,站点编号\nD1,湖某甲,区,S-HT\n", encoding="utf-8-sig")
    duty = write(tmp_path, "值班.csv", "站点编号,代表编号,日期,开始时间,结束时间\nS-HT,D1,周一,09:00,12:00\n"
                                       "S-HT,D1,2,14:00,12:00\n")
    assert (await import_file(uow_factory, "deputies", deputies)).created == 1
    report = await import_file(uow_factory, "duty", duty)
    assert report.created == 1 and report.errors[0][0] == 3 and "开始时间 为 14:00" in report.errors[0][1]
    async with uow_factory() as uow:
        assert (await uow.stations.get("S-HT")).places == ("西村", "东村")
        assert (await uow.deputies.get("D1")).phone == ""


async def test_a_chinese_header_with_an_unknown_column_names_it_in_one_message(uow_factory, tmp_path: Path) -> None:
    path = write(tmp_path, "s.csv", "编号,站名称,类型,镇街\nS1,某站,站,松陵\n")
    report = await import_file(uow_factory, "stations", path)
    assert report.rows_read == 0 and len(report.errors) == 1
    line, message = report.errors[0]
    assert line == 1 and "「站名称」" in message and "缺少列「名称」" in message
    assert "编号,名称,类型,镇街,地址,专业领域,服务村社区" in message  # the header to write, in Chinese first
