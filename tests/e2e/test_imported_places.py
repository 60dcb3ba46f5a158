"""Places come from the stations actually imported: another district's stations, imported from a
GBK CSV through the real importer, are understood by the running app's embedded NLU (the Rasa
lookup table from the same stations: tests/cli, `zhitongche nlu places`)."""
from __future__ import annotations

from datetime import datetime
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from e2e_stack import AES_KEY, APPID, TOKEN, SettableClock, Stack

from bot.bootstrap import BotApp
from bot.core.tickets import TicketStatus
from bot.settings import Settings
from bot.texts import default_texts
from bot.wechat.fake_api import FakeWeChatAPI
from nlu.embedded import EmbeddedNLU, load_embedded
from storage.importer import import_file

TEXTS = default_texts()
CITIZEN = "oCitizen-places-001"
REPORT = "湖塘镇西村的河道里漂着很多垃圾"
STATIONS = ("编号,名称,类型,镇街,地址,专业领域,服务村社区\r\n"
            "HT-H,湖塘镇代表之家,家,湖塘镇,湖塘路1号,,\r\n"
            "HT-01,西村代表联络站,站,湖塘镇,西村村委会,,西村;东村\r\n")
DEPUTIES = "code,name,level,station_code,phone\nH001,湖塘代表甲,镇,HT-01,13800000011\n"
DUTY = "station_code,deputy_code,day,start,end\nHT-01,H001,2,08:00,20:00\n"


async def test_a_place_of_imported_stations_is_understood_and_not_asked_again(tmp_path: Path) -> None:
    for name, content in (("stations.csv", STATIONS.encode("gbk")), ("deputies.csv", DEPUTIES.encode()),
                          ("duty.csv", DUTY.encode())):
        (tmp_path / name).write_bytes(content)
    api = FakeWeChatAPI(appid=APPID)
    api_server = TestServer(api.create_app())
    await api_server.start_server()
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", redis_url="",
                        wechat_token=TOKEN, wechat_aes_key=AES_KEY, wechat_appid=APPID,
                        wechat_api_base=str(api_server.make_url("")).rstrip("/"))
    clock = SettableClock(datetime(2026, 12, 1, 10, 0))  # a Tuesday: H001 is on duty
    nlu = EmbeddedNLU(load_embedded().model)  # its own engine: the process-wide one stays as built
    assert not [e for e in nlu.parse_sync(REPORT)["entities"] if e["entity"] == "place"]
    bot = BotApp(settings, clock=clock, nlu=nlu)
    await bot.start()
    client = TestClient(TestServer(bot.web_app))
    await client.start_server()
    try:
        for kind in ("stations", "deputies", "duty"):
            report = await import_file(bot.services.uow, kind, tmp_path / f"{kind}.csv")
            assert not report.errors, report.errors
        await bot.run_job("refresh_places")  # what the running app does every minute
        stack = Stack(bot=bot, client=client, api=api, clock=clock, encrypted=True)

        reply = await stack.send(CITIZEN, REPORT)
        assert TEXTS.get("form_ask_details") in reply and TEXTS.get("form_ask_where") not in reply
        await stack.send(CITIZEN, "没有")
        summary = await stack.send(CITIZEN, "不留")
        assert "湖塘镇西村" in summary
        await stack.send(CITIZEN, "是")
        async with bot.services.uow() as uow:
            [ticket] = await uow.tickets.list_for_citizen(CITIZEN)
        assert (ticket.place, ticket.station_code, ticket.deputy_code) == ("湖塘镇西村", "HT-01", "H001")
        assert ticket.status is TicketStatus.ASSIGNED
    finally:
        await client.close()
        await bot.stop()
        await api_server.close()

