"""The `zhitongche` console script as staff run it: a real process, a real SQLite file, and for QR
codes a local fake WeChat API."""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot.wechat.fake_api import FakeWeChatAPI

SCRIPT = shutil.which("zhitongche", path=str(Path(sys.executable).parent))

STATIONS = """code,name,kind,town,address,specialties,places
SL-H,松陵街道代表之家,家,松陵街道,中山北路1号,,
SL-01,江村代表联络站,站,松陵街道,江村村委会,城乡建设,江村;梅里社区
BAD-1,坏行站,站点,松陵街道,,,
"""
DEPUTIES = """code,name,level,station_code,phone
D001,测试代表甲,区,SL-01,13800000001
D002,测试代表乙,省长,SL-01,13800000002
D003,测试代表丙,镇,NOPE,13800000003
"""


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZTC_")}
    env |= {"ZTC_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}", "ZTC_REDIS_URL": ""}
    return env | extra


async def run(tmp_path: Path, *args: str, **extra: str) -> tuple[int, str]:
    assert SCRIPT, "the console script is installed with the project"
    proc = await asyncio.create_subprocess_exec(
        SCRIPT, *args, env=env_for(tmp_path, **extra), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode, out.decode()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_import_reports_bad_rows_by_line_and_keeps_the_good_ones(tmp_path: Path) -> None:
    stations = write(tmp_path, "stations.csv", STATIONS)
    code, out = await run(tmp_path, "import", "stations", str(stations))
    assert code == 1  # a file with bad rows is not a silent success
    assert "新增 2" in out and "有问题 1" in out
    assert re.search(r"\b4\b[^\n]*kind[^\n]*站点", out), out  # line 4: the column and its bad value

    deputies = write(tmp_path, "deputies.csv", DEPUTIES)
    code, out = await run(tmp_path, "import", "deputies", str(deputies))
    assert code == 1 and "新增 1" in out and "有问题 2" in out
    assert "省长" in out and "NOPE" in out

    # importing the same file again changes nothing
    code, out = await run(tmp_path, "import", "stations", str(stations))
    assert "新增 0" in out and "更新 0" in out and "未变 2" in out


async def test_import_reads_gbk_csv_with_chinese_headers_as_excel_saves_it(tmp_path: Path) -> None:
    stations = tmp_path / "站点.csv"
    stations.write_bytes("编号,名称,类型,镇街,地址,专业领域,服务村社区\r\n"
                         "HT-H,湖塘镇代表之家,家,湖塘镇,湖塘路1号,,西村;东村\r\n"
                         "HT-01,湖塘联络站,联络站,湖塘镇,,,\r\n"
                         "HT-02,坏站,站点,湖塘镇,,,\r\n".encode("gbk"))
    code, out = await run(tmp_path, "import", "stations", str(stations))
    assert code == 1 and "新增 2" in out and "有问题 1" in out
    assert re.search(r"\b4\b[^\n]*类型[^\n]*站点", out), out  # line 4, the column as the file names it

    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["代表编号", "姓名", "级别", "站点编号", "手机号"])
    book.active.append(["D1", "湖某甲", "区", "HT-H", 13800000001])
    book.save(tmp_path / "代表.xlsx")
    code, out = await run(tmp_path, "import", "deputies", str(tmp_path / "代表.xlsx"))
    assert code == 0 and "新增 1" in out, out


async def test_nlu_places_writes_the_rasa_lookup_from_the_imported_stations(tmp_path: Path) -> None:
    stations = tmp_path / "站点.csv"
    stations.write_bytes("编号,名称,类型,镇街,地址,专业领域,服务村社区\r\n"
                         "HT-H,湖塘镇代表之家,家,湖塘镇,湖塘路1号,,西村;马杭村\r\n".encode("gbk"))
    code, out = await run(tmp_path, "import", "stations", str(stations))
    assert code == 0 and "nlu places" in out, out
    lookup, jieba_dir = tmp_path / "places.yml", tmp_path / "jieba"
    code, out = await run(tmp_path, "nlu", "places", "--lookup", str(lookup), "--jieba-dir", str(jieba_dir))
    assert code == 0, out
    from nlu import data as nd

    table = nd.load_places(lookup)
    assert {"湖塘镇", "西村", "马杭村"} <= table.canonical and table.synonyms["湖塘"] == "湖塘镇"
    assert "松陵街道" not in table.canonical  # the stations table, not the demo data
    assert "西村 2000 ns" in (jieba_dir / "places.txt").read_text(encoding="utf-8").splitlines()


async def test_import_with_a_misspelt_header_says_which_column_in_chinese(tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "编号,名子,级别,站点编号\nD1,某,区,S1\n")
    code, out = await run(tmp_path, "import", "deputies", str(path))
    assert code == 1 and "「名子」" in out and "「姓名」" in out and "Traceback" not in out


async def test_bind_code_is_printed_for_a_known_deputy_only(tmp_path: Path) -> None:
    await run(tmp_path, "import", "stations", str(write(tmp_path, "s.csv", STATIONS)))
    await run(tmp_path, "import", "deputies", str(write(tmp_path, "d.csv", DEPUTIES)))
    code, out = await run(tmp_path, "deputy", "bind-code", "D001")
    assert code == 0
    digits = [word for word in out.replace("「", " ").replace("」", " ").split() if word.isdigit()]
    assert digits and len(digits[0]) == 6

    code, out = await run(tmp_path, "deputy", "bind-code", "D999")
    assert code == 1 and "D999" in out and "Traceback" not in out
    assert "现在用的数据库" in out  # which database was looked in (the demo keeps its own)


def english_words(out: str) -> list[str]:
    """ASCII words of three letters or more, once masked openids (oCit…56) are taken out."""
    return re.findall(r"[A-Za-z]{3,}", re.sub(r"\w{4}…\w{2}", "", out))


async def test_bind_code_answers_in_chinese_only(tmp_path: Path) -> None:
    await run(tmp_path, "import", "stations", str(write(tmp_path, "s.csv", STATIONS)))
    await run(tmp_path, "import", "deputies", str(write(tmp_path, "d.csv", DEPUTIES)))
    code, out = await run(tmp_path, "deputy", "bind-code", "D001")
    assert code == 0 and english_words(out) == [], out  # no INFO log lines mixed in


async def test_outbox_in_chinese_names_deputies_and_masks_citizens(tmp_path: Path) -> None:
    from bot.core.outbound import OutboxMessage
    from storage.sql import SqlUnitOfWorkFactory

    await run(tmp_path, "import", "stations", str(write(tmp_path, "s.csv", STATIONS)))
    await run(tmp_path, "import", "deputies", str(write(tmp_path, "d.csv", DEPUTIES)))
    factory = SqlUnitOfWorkFactory(env_for(tmp_path)["ZTC_DATABASE_URL"])
    async with factory() as uow:
        await uow.deputies.bind("D001", "oDeputyOpenid0001")
        # the reasons as handlers/delivery.py stores them: WeChat's and Python's own words
        for message in (
            OutboxMessage(recipient_openid="oCitizenOpenid123456", text="您的诉求已受理", status="held",
                          last_error="outside the messaging window, no template configured"),
            OutboxMessage(recipient_openid="oDeputyOpenid0001", text="【新工单 #1001】", status="failed",
                          attempts=5, last_error="WeChat API error 43004: require subscribe"),
            OutboxMessage(recipient_openid="oCitizenOpenid999999", text="已办结", status="pending",
                          attempts=1, last_error="ClientConnectorError: Cannot connect to host"),
            OutboxMessage(recipient_openid="oCitizenOpenid999999", text="您好", status="sent", channel="template"),
            OutboxMessage(recipient_openid="oDeputyOpenid0001", text="【新工单 #1002】", status="dropped",
                          last_error="stale: transferred", ticket_number=1002),
        ):
            await uow.outbox.add(message)
        await uow.commit()
    await factory.dispose()

    code, out = await run(tmp_path, "outbox", COLUMNS="200")
    assert code == 0, out
    assert "oCitizenOpenid123456" not in out and "oDeputyOpenid0001" not in out  # openids never in full
    assert "群众 oCit…56" in out and "测试代表甲代表（D001）" in out
    assert "暂存" in out and "没配置模板消息" in out and "已取消关注" in out and "网络不通" in out
    assert "已办结" in out and "您好" not in out  # sent messages only with --all
    assert "不再发送" in out and "工单已转给别的代表" in out  # a held notice dropped, not delivered stale
    assert english_words(out) == [], out  # no English reasons, no log lines

    code, out = await run(tmp_path, "outbox", "--all", COLUMNS="200")
    assert "您好" in out and "模板消息" in out and english_words(out) == [], out


async def start_fake_wechat() -> tuple[FakeWeChatAPI, TestServer, dict[str, str]]:
    api = FakeWeChatAPI(appid="wxcli", secret="s3cret")
    server = TestServer(api.create_app())
    await server.start_server()
    env = {"ZTC_WECHAT_API_BASE": str(server.make_url("")).rstrip("/"),
           "ZTC_WECHAT_APPID": "wxcli", "ZTC_WECHAT_SECRET": "s3cret"}
    return api, server, env


async def test_qrcode_is_saved_as_a_printable_poster(tmp_path: Path) -> None:
    from PIL import Image

    await run(tmp_path, "import", "stations", str(write(tmp_path, "s.csv", STATIONS)))
    await run(tmp_path, "import", "deputies", str(write(tmp_path, "d.csv", DEPUTIES)))
    api, server, wechat = await start_fake_wechat()
    try:
        out_file = tmp_path / "sl01.png"
        code, out = await run(tmp_path, "qrcode", "station", "SL-01", "--out", str(out_file), COLUMNS="300", **wechat)
        assert code == 0, out
        assert str(out_file) in out and english_words(out.replace(str(out_file), "")) == ["dpi"], out
        created = [c for c in api.calls if c["path"] == "/cgi-bin/qrcode/create"]
        assert created[0]["json"]["action_info"]["scene"]["scene_str"] == "station:SL-01"
        poster = Image.open(out_file)
        assert poster.format == "PNG" and poster.size == (1748, 2480)  # A5 at 300 dpi
        assert round(poster.info["dpi"][0]) == 300
        # the code is on it, large: the middle of the page holds the QR's dark modules
        middle = poster.convert("L").crop((400, 900, 1348, 1700))
        dark = sum(middle.histogram()[:80]) / (middle.width * middle.height)
        assert 0.2 < dark < 0.8

        deputy_file = tmp_path / "d001.png"
        code, out = await run(tmp_path, "qrcode", "deputy", "D001", "--paper", "A4", "--out", str(deputy_file),
                              **wechat)
        assert code == 0, out
        assert Image.open(deputy_file).size == (2480, 3508)  # A4 at 300 dpi

        code, out = await run(tmp_path, "qrcode", "station", "NOPE", **wechat)
        assert code != 0 and "NOPE" in out and "Error" not in out

        code, out = await run(tmp_path, "qrcode", "station", "SL-01", "--out", str(tmp_path / "x.png"),
                              ZTC_POSTER_FONT=str(tmp_path / "no-font.ttc"), **wechat)
        assert code != 0 and "fonts-noto-cjk" in out and "Traceback" not in out
    finally:
        await server.close()


async def test_qrcode_without_network_says_so_in_one_chinese_sentence(tmp_path: Path) -> None:
    await run(tmp_path, "import", "stations", str(write(tmp_path, "s.csv", STATIONS)))
    closed = TestServer(FakeWeChatAPI().create_app())  # a port nothing listens on once it is closed
    await closed.start_server()
    base = str(closed.make_url("")).rstrip("/")
    await closed.close()
    out_file = tmp_path / "none.png"
    code, out = await run(tmp_path, "qrcode", "station", "SL-01", "--out", str(out_file), ZTC_WECHAT_API_BASE=base)
    assert code != 0 and not out_file.exists()
    assert len(out.strip().splitlines()) == 1 and "连不上微信" in out, out
    assert english_words(out) == [], out


@pytest.mark.parametrize("args", [["import", "tickets", "x.csv"], ["import", "stations", "nope.csv"],
                                  ["qrcode", "station"], ["outbox", "--bogus"], ["imprt"],
                                  ["qrcode", "station", "S1", "--paper", "B5"]])
async def test_click_usage_errors_are_in_chinese(tmp_path: Path, args: list[str]) -> None:
    code, out = await run(tmp_path, *args)
    assert code == 2 and "出错了" in out and "查看说明" in out, out
    # what is left in ASCII is what the user typed or may type: command names, the kinds, file names
    typed = {"zhitongche", "import", "imprt", "tickets", "stations", "deputies", "duty", "nope", "csv",
             "qrcode", "station", "outbox", "bogus", "paper", "help"}
    assert set(english_words(out)) <= typed, out


async def test_click_help_is_in_chinese(tmp_path: Path) -> None:
    code, out = await run(tmp_path, "--help")
    assert code == 0 and "显示这段说明" in out and "用法" in out and "命令" in out and "Show this" not in out
    code, out = await run(tmp_path, "import", "-h")
    assert code == 0 and "[选项] 类型 文件" in out, out


def test_every_translated_click_message_is_one_click_still_uses() -> None:
    import click

    from bot.texts import default_texts

    source = "".join(path.read_text(encoding="utf-8") for path in Path(click.__file__).parent.glob("*.py"))
    unused = [msgid for msgid in default_texts().raw("click_messages")
              if f'"{msgid}"'.replace("\n", "\\n") not in source]
    assert unused == []


@pytest.mark.parametrize("args", [["db", "upgrade"], ["--help"], ["nlu", "--help"]])
async def test_commands_run(tmp_path: Path, args: list[str]) -> None:
    code, out = await run(tmp_path, *args)
    assert code == 0, out


async def test_the_demo_banner_gives_the_command_line_its_database(tmp_path: Path) -> None:
    """After `make demo`, `deputy bind-code D001` must find the demo's deputies: the banner says how."""
    import shlex
    import signal
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if port + 2 > 65535:
        port -= 2
    demo = await asyncio.create_subprocess_exec(
        SCRIPT, "demo", "--port", str(port), "--database", str(tmp_path / "demo.db"),
        env=env_for(tmp_path), cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    try:
        export = ""
        async with asyncio.timeout(240):
            while not export:
                line = (await demo.stdout.readline()).decode()
                assert line, "the demo ended before printing its banner"
                if line.strip().startswith("export ZTC_DATABASE_URL="):
                    export = line.strip()
        name, _, value = shlex.split(export)[1].partition("=")
        code, out = await run(tmp_path, "deputy", "bind-code", "D001", **{name: value})
        assert code == 0 and "D001" in out, out
    finally:
        demo.send_signal(signal.SIGINT)
        await demo.wait()


async def test_reception_import_and_list(tmp_path: Path) -> None:
    assert (await run(tmp_path, "import", "stations", str(write(tmp_path, "s.csv", STATIONS))))[0] == 1  # BAD-1
    assert (await run(tmp_path, "import", "deputies", str(write(tmp_path, "d.csv", DEPUTIES))))[0] == 1  # D002, D003
    rota = tmp_path / "rota.csv"
    rota.write_bytes("站点编号,代表编号,日期,开始,结束,主题,地点\n"
                     "SL-01,D001,2099-12-05,09:00,11:00,主题接待：养老服务,江村村委会\n"
                     "SL-01,D001,2099-12-05,10:00,12:00,撞车,江村\n".encode("gbk"))
    code, out = await run(tmp_path, "reception", "import", str(rota))
    assert code == 1 and "新增 1" in out and "有问题 1" in out
    assert re.search(r"\b3\b[^\n]*D001", out), out
    code, out = await run(tmp_path, "reception", "list", "--station", "SL-01", COLUMNS="200")
    assert code == 0 and "2099-12-05 09:00-11:00" in out and "测试代表甲" in out and "已安排" in out
    code, out = await run(tmp_path, "reception", "list", "--town", "七都镇")
    assert code == 0 and "没有接待安排" in out
