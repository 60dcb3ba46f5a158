"""The host's live page in headless Chromium against the running app: a question sent through
/wechat (signed, AES-encrypted XML) appears on the open page without a reload, the host answers
it there, and the presenter view shows it in large type. Screenshots: tests/browser/artifacts/."""
from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from simrig import ARTIFACTS, serve

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from e2e_stack import ACCOUNT, AES_KEY, APPID, TOKEN, write_data  # noqa: E402

from bot.bootstrap import BotApp  # noqa: E402
from bot.console.auth import create_account  # noqa: E402
from bot.core.live import LiveSession  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.wechat.crypto import MessageCrypto  # noqa: E402
from bot.wechat.fake_api import FakeWeChatAPI  # noqa: E402
from bot.wechat.platform import open_reply, signed_request, text_xml  # noqa: E402
from handlers import live  # noqa: E402
from storage.importer import import_file  # noqa: E402

pytestmark = pytest.mark.browser
PASSWORD = "一二三四五六七八"


@pytest.fixture
async def app(tmp_path):
    api = FakeWeChatAPI(appid=APPID)
    api_server = TestServer(api.create_app())
    await api_server.start_server()
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'live.db'}", redis_url="",
                        wechat_token=TOKEN, wechat_aes_key=AES_KEY, wechat_appid=APPID,
                        wechat_api_base=str(api_server.make_url("")).rstrip("/"))
    bot = BotApp(settings)
    await bot.start()
    for kind, path in write_data(tmp_path).items():
        await import_file(bot.services.uow, kind, path)
    account, _ = await create_account(bot.services.uow, bot.clock, username="host", password=PASSWORD,
                                      role="district", name="区人大主持人")
    async with bot.services.uow() as uow:
        stored = await uow.staff.get("host")
        stored.must_change_password = False
        await uow.staff.save(stored)
        await uow.commit()
    runner, base = await serve(bot.web_app)
    try:
        yield bot, base
    finally:
        await runner.cleanup()
        await bot.stop()
        await api_server.close()


async def _wechat(base: str, openid: str, text: str, msg_id: int) -> str:
    crypto = MessageCrypto(TOKEN, AES_KEY, APPID)
    request = signed_request(TOKEN, text_xml(openid, ACCOUNT, text, created_at=1764547200 + msg_id, msg_id=msg_id),
                             crypto=crypto)
    async with aiohttp.ClientSession() as http:
        async with http.post(base + "/wechat", params=request.query, data=request.body.encode()) as r:
            assert r.status == 200
            return (open_reply(await r.text(), crypto) or {}).get("Content", "")


async def test_a_question_from_wechat_appears_live_and_is_answered(browser, app) -> None:
    bot, base = app
    now = bot.clock.now()
    session = await live.create_session(bot.services, LiveSession(
        "SL-01", "江村代表直播接待", "https://live.douyin.com/1", now - timedelta(minutes=5), now + timedelta(hours=2),
        ("D001",)))
    await _wechat(base, "oBrowserA", session.keyword, 1)
    await _wechat(base, "oBrowserA", "江村垃圾站什么时候建好？", 2)

    context = await browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    await page.goto(base + f"/console/live/{session.id}")
    await page.fill("input[name=username]", "host")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("main button[type=submit]")
    await page.wait_for_url(f"**/console/live/{session.id}")
    await page.wait_for_selector("text=江村垃圾站什么时候建好？")
    await page.wait_for_selector("#live-conn >> text=实时更新中")

    await _wechat(base, "oBrowserB", session.keyword, 3)
    assert "问题已收到" in await _wechat(base, "oBrowserB", "江村的垃圾站什么时候能建好", 4)
    started = datetime.now()
    await page.wait_for_selector("text=江村的垃圾站什么时候能建好", timeout=3000)
    assert datetime.now() - started < timedelta(seconds=2)  # live, no reload
    assert await page.locator(".q-similar").count() >= 1  # the two are suggested as duplicates
    await page.get_by_text("共2个问题，2人提问").wait_for()  # the summary follows too
    async with aiohttp.ClientSession(cookies={c["name"]: c["value"] for c in await context.cookies()}) as http:
        async with http.get(base + f"/console/live/{session.id}/qr") as r:
            assert r.status == 200 and r.content_type == "image/png"
            (ARTIFACTS / "live-qr-poster.png").write_bytes(await r.read())
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "live-host-queue.png"), full_page=True)

    ids = [q.id for q in await live.questions(bot.services, session.id)]
    second = page.locator(f'#live-queue .q[data-id="{ids[1]}"]')
    await second.get_by_role("button", name=f"合并进 #{ids[0]}").click()
    first = page.locator(f'#live-queue .q[data-id="{ids[0]}"]')
    await first.get_by_text("2人问").wait_for()
    await second.wait_for(state="detached")  # merged: off the open queue
    await first.get_by_role("button", name="设为正在回答").click()
    now_box = page.locator("#live-now")
    await now_box.get_by_text("江村垃圾站什么时候建好？").wait_for()

    present = await context.new_page()
    await present.set_viewport_size({"width": 1280, "height": 720})
    await present.goto(base + f"/console/live/{session.id}/present")
    await present.locator("#live-now").get_by_text("江村垃圾站什么时候建好？").wait_for()
    await present.screenshot(path=str(ARTIFACTS / "live-presenter.png"))

    await now_box.get_by_role("button", name="回答").click()
    await now_box.locator("textarea").fill("年底前建好，请大家放心")
    await now_box.get_by_role("button", name="发送").click()
    await page.get_by_text("还没有选定正在回答的问题").first.wait_for()
    await page.click("#live-tabs a[data-tab=answered]")
    await page.get_by_text("回答：年底前建好，请大家放心").wait_for()
    await page.screenshot(path=str(ARTIFACTS / "live-host-answered.png"), full_page=True)
    qs = await live.questions(bot.services, session.id)
    assert qs[0].answer == "年底前建好，请大家放心" and set(qs[0].askers) == {"oBrowserA", "oBrowserB"}
    await context.close()
