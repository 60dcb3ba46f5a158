"""The deputy's ticket page in a real browser on a 360×640 phone: big readable type, the whole
text, the photo, no sideways scrolling; an expired link gives a plain Chinese page (410).
Screenshots: tests/browser/artifacts/ticket_page_360.png, ticket_page_expired_360.png."""
from __future__ import annotations

import base64
from datetime import datetime, timedelta

from aiohttp.test_utils import TestServer

from bot.bootstrap import BotApp
from bot.core.people import Deputy, Station, StationKind
from bot.core.tickets import Attachment, Ticket
from bot.settings import Settings
from bot.wechat.fake_api import placeholder_png
from handlers.ticket_links import ticket_link
from simrig import ARTIFACTS

DETAILS = ("我们江村三组村口到桥头那段路，一共六根路灯，从上个月十号开始就有四根不亮了。"
           "晚上路上一片漆黑，老人出门散步、孩子放学回家都很不安全，上周还有人骑电动车摔了一跤。") * 8


class _NoWeChat:
    async def send_text(self, *args, **kw): ...
    async def send_template(self, *args, **kw): ...
    async def send_subscribe(self, *args, **kw): ...
    async def create_qrcode(self, scene): return b""


class _Clock:
    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current


async def test_the_ticket_page_reads_well_on_a_small_phone(browser, tmp_path) -> None:
    clock = _Clock(datetime(2026, 12, 1, 10, 0))
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'page.db'}",  # type: ignore[call-arg]
                        public_base_url="http://placeholder")
    bot = BotApp(settings, clock=clock, gateway=_NoWeChat())
    await bot.start()
    photo = "data:image/png;base64," + base64.b64encode(placeholder_png("路灯")).decode()
    async with bot.services.uow() as uow:
        await uow.stations.upsert(Station("SL-01", "江村代表联络站", StationKind.STATION, "松陵街道"))
        await uow.deputies.upsert(Deputy("D001", "沈建华", "区", "SL-01", phone="13800000001"))
        filed = Ticket.file(citizen_openid="oCitizenPage0001", category="城乡建设", summary="村口路灯坏了四根",
                            place="松陵街道 江村三组", details=DETAILS, station_code="SL-01", at=clock.now(),
                            phone="13912345678", share_contact=True,
                            attachments=[Attachment("image", media_id="m1", url=photo),
                                         Attachment("voice", media_id="v1", text="桥头那几根路灯一直不亮")],
                            deputy_code="D001")
        stored = await uow.tickets.add(filed)
        stored.announce()
        await uow.commit()
    server = TestServer(bot.web_app)
    await server.start_server()
    context = await browser.new_context(viewport={"width": 360, "height": 640}, device_scale_factor=2, locale="zh-CN")
    page = await context.new_page()
    try:
        link = ticket_link(settings, stored.number, "D001", clock.now())
        path = link[link.index("/t/"):]
        response = await page.goto(str(server.make_url(path)))
        assert response.status == 200
        await page.wait_for_function("document.images[0] && document.images[0].complete")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "ticket_page_360.png"), full_page=False)
        await page.screenshot(path=str(ARTIFACTS / "ticket_page_360_full.png"), full_page=True)
        body = await page.inner_text("body")
        assert DETAILS[:60] in body and "13912345678" in body and "桥头那几根路灯一直不亮" in body
        assert "交给沈建华代表" in body  # the timeline names the deputy
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scrolling
        size = await page.evaluate("parseFloat(getComputedStyle(document.querySelector('.details')).fontSize)")
        assert size >= 18  # big enough for an older deputy
        assert await page.evaluate("document.images[0].naturalWidth") > 0  # the photo shows
        assert await page.evaluate("document.images[0].getBoundingClientRect().width") <= 360

        clock.current += timedelta(days=8)
        response = await page.goto(str(server.make_url(path)))
        assert response.status == 410
        await page.screenshot(path=str(ARTIFACTS / "ticket_page_expired_360.png"))
        assert "链接已过期" in await page.inner_text("body")
    finally:
        await context.close()
        await server.close()
        await bot.stop()
