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


async def test_bind_code_is_printed_for_a_known_deputy_only(tmp_path: Path) -> None:
    await run(tmp_path, "import", "stations", str(write(tmp_path, "s.csv", STATIONS)))
    await run(tmp_path, "import", "deputies", str(write(tmp_path, "d.csv", DEPUTIES)))
    code, out = await run(tmp_path, "deputy", "bind-code", "D001")
    assert code == 0
    digits = [word for word in out.replace("「", " ").replace("」", " ").split() if word.isdigit()]
    assert digits and len(digits[0]) == 6

    code, out = await run(tmp_path, "deputy", "bind-code", "D999")
    assert code == 1 and "D999" in out


async def test_outbox_lists_waiting_messages_with_masked_recipients(tmp_path: Path) -> None:
    from bot.core.outbound import OutboxMessage
    from storage.migrate import upgrade
    from storage.sql import SqlUnitOfWorkFactory

    url = env_for(tmp_path)["ZTC_DATABASE_URL"]
    await asyncio.to_thread(upgrade, url)
    factory = SqlUnitOfWorkFactory(url)
    async with factory() as uow:
        await uow.outbox.add(OutboxMessage(recipient_openid="oCitizenOpenid123456", text="您的诉求已受理",
                                           status="held", last_error="no window"))
        await uow.commit()
    await factory.dispose()

    code, out = await run(tmp_path, "outbox")
    assert code == 0
    assert "您的诉求已受理" in out and "暂存" in out
    assert "oCitizenOpenid123456" not in out  # openids never shown in full


async def test_qrcode_for_a_station_is_saved_as_png(tmp_path: Path) -> None:
    await run(tmp_path, "import", "stations", str(write(tmp_path, "s.csv", STATIONS)))
    api = FakeWeChatAPI(appid="wxcli", secret="s3cret")
    server = TestServer(api.create_app())
    await server.start_server()
    try:
        out_file = tmp_path / "sl01.png"
        code, out = await run(tmp_path, "qrcode", "station", "SL-01", "--out", str(out_file),
                              ZTC_WECHAT_API_BASE=str(server.make_url("")).rstrip("/"),
                              ZTC_WECHAT_APPID="wxcli", ZTC_WECHAT_SECRET="s3cret")
        assert code == 0, out
        assert out_file.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
        created = [c for c in api.calls if c["path"] == "/cgi-bin/qrcode/create"]
        assert created[0]["json"]["action_info"]["scene"]["scene_str"] == "station:SL-01"

        code, out = await run(tmp_path, "qrcode", "station", "NOPE",
                              ZTC_WECHAT_API_BASE=str(server.make_url("")).rstrip("/"))
        assert code != 0 and "NOPE" in out
    finally:
        await server.close()


@pytest.mark.parametrize("args", [["db", "upgrade"], ["--help"], ["nlu", "--help"]])
async def test_commands_run(tmp_path: Path, args: list[str]) -> None:
    code, out = await run(tmp_path, *args)
    assert code == 0, out
