"""The console's reception days in headless Chromium: a town account creates a reception (a
mistake first, told in Chinese beside the form), announces it to the town's followers — the plan
with each station's monthly budget and the 订阅通知 for those who accepted it, 发送 — and the fake
WeChat API receives the mass message and the 订阅通知; the broadcast page shows the result per
channel; 群发记录 lists the broadcasts in scope with a retry. Screenshots: tests/browser/artifacts/console-receptions-*.png."""
from __future__ import annotations

import asyncio
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from simrig import serve
from test_console_browser import no_english
from test_console_browser import shot as console_shot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
from rig import PASSWORD, build_sending_rig  # noqa: E402
from seed import NOW  # noqa: E402

from bot.core.receptions import Follow  # noqa: E402
from bot.wechat.fake_api import FakeWeChatAPI  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.sql import SqlUnitOfWorkFactory  # noqa: E402

pytestmark = pytest.mark.browser
FOLLOWERS = [f"oFollowerBrowser{i:03d}" for i in range(12)]


@pytest.fixture
async def console(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    await asyncio.to_thread(upgrade, url)
    factory = SqlUnitOfWorkFactory(url)
    wechat = FakeWeChatAPI()
    wechat_runner, wechat_base = await serve(wechat.create_app())
    rig, senders, gateway = await build_sending_rig(factory, wechat_base)
    async with factory() as uow:
        for i, openid in enumerate(FOLLOWERS):
            await uow.follows.follow(Follow(openid, "SZ-01" if i % 3 else "SZ-02", NOW))
        await uow.commit()
    runner, base = await serve(rig.app)
    try:
        yield base, wechat, rig, gateway
    finally:
        await asyncio.gather(*senders, return_exceptions=True)
        await runner.cleanup()
        await gateway.aclose()
        await wechat_runner.cleanup()
        await factory.dispose()


async def signed_in(browser, base: str, username: str, **context):
    """A new page of the console, signed in as `username`."""
    page = await (await browser.new_context(locale="zh-CN", **context)).new_page()
    await page.goto(base + "/console/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("main button[type=submit]")
    return page


async def shot(page, name: str) -> None:
    await console_shot(page, f"receptions-{name}")


async def test_create_a_reception_and_send_its_announcement(browser, console) -> None:
    from handlers import channels

    base, wechat, rig, _ = console
    rig.services.settings.subscribe_id_reception = "tpl-reception"
    subscribers = FOLLOWERS[1:3]  # two accepted the reception-notice 订阅通知
    for openid in subscribers:
        await channels.grant_subscription(rig.services, openid, "tpl-reception")
        wechat.grant_subscription(openid, "tpl-reception")
    page = await signed_in(browser, base, "shengze", viewport={"width": 1366, "height": 900})
    await page.click("nav >> text=接待日")
    assert "这段时间没有安排接待" in await page.inner_text("main")
    await page.click("text=安排一场接待")

    saturday = (NOW.date() + timedelta(days=4)).isoformat()
    await page.select_option("select[name=station]", "SZ-01")
    await page.check("input[name=deputy][value=D101]")
    await page.fill("input[name=date]", saturday)
    await page.fill("input[name=start]", "09:00")
    await page.fill("input[name=end]", "08:30")  # a mistake first
    await page.fill("input[name=topic]", "主题接待：养老服务")
    await page.fill("input[name=place]", "东方社区服务中心二楼")
    await page.click("main button[type=submit]")
    assert "结束时间（08:30）必须晚于开始时间（09:00）" in await page.inner_text("main .error")
    assert await page.input_value("input[name=topic]") == "主题接待：养老服务"  # nothing typed is lost
    await no_english(page)
    await shot(page, "form-error")
    await page.fill("input[name=end]", "11:00")
    await page.click("main button[type=submit]")
    assert "接待安排已保存" in await page.inner_text(".notice")
    row = await page.inner_text("tr.rc")
    assert "沈建国" in row and "主题接待：养老服务" in row and "已安排" in row
    await no_english(page)
    await shot(page, "list")

    await page.click("tr.rc >> text=发通知")
    await page.select_option("select[name=audience]", "town:盛泽镇")
    await shot(page, "broadcast-new")
    await page.click("text=下一步：看发送计划")
    plan = await page.inner_text("main")
    assert "按名单群发\t10" in plan and "订阅通知（同意接收接待通知的人，不占群发次数）\t2" in plan
    assert "本月还能群发" in plan and "4 次" in plan and "共发给 12 人" in plan
    assert wechat.mass_calls() == []  # the plan sends nothing
    await no_english(page)
    await shot(page, "broadcast-plan")
    await page.click("button:has-text('发送')")
    await page.wait_for_url("**/console/broadcasts/*")
    for _ in range(50):
        if "已发完" in await page.inner_text("h1"):
            break
        await asyncio.sleep(0.2)
        await page.reload()
    assert "已发完" in await page.inner_text("h1")
    assert await page.inner_text("tr[data-channel=mass_openids] td.ok") == "10"
    assert await page.inner_text("tr[data-channel=subscribe] td.ok") == "2"
    assert "发送人\n盛泽镇王芳" in await page.inner_text("dl.facts")
    await no_english(page)
    await shot(page, "broadcast-done")

    calls = wechat.mass_calls()
    assert len(calls) == 1 and sorted(calls[0]["json"]["touser"]) == sorted(set(FOLLOWERS) - set(subscribers))
    received = wechat.mass_received[FOLLOWERS[0]]
    assert len(received) == 1 and "东方社区服务中心二楼" in received[0] and "沈建国" in received[0]
    notices = [c for c in wechat.messages() if c["path"].endswith("/subscribe/bizsend")]
    assert sorted(c["openid"] for c in notices) == subscribers and notices[0]["data"]["thing3"] == "东方社区服务中心二楼"


async def test_the_list_of_broadcasts_with_channels_progress_and_a_retry(browser, console) -> None:
    from datetime import time

    from bot.core.receptions import Reception
    from handlers import broadcasts, channels, receptions
    from handlers.broadcasts import BroadcastRequest

    base, wechat, rig, gateway = console
    services = rig.services
    services.settings.subscribe_id_reception = "tpl-reception"
    for openid in FOLLOWERS[1:3]:  # two of SZ-01's followers accepted the reception notice
        await channels.grant_subscription(services, openid, "tpl-reception")
        wechat.grant_subscription(openid, "tpl-reception")
    stored = await receptions.create_reception(services, Reception(
        "SZ-01", ("D101",), NOW.date() + timedelta(days=4), time(9), time(11), "主题接待：养老服务", "东方社区服务中心"))
    announced, _ = await broadcasts.create_broadcast(services, BroadcastRequest(
        "station", "SZ-01", reception_id=stored.id, created_by="shengze"))
    await broadcasts.send_pending(services, gateway, announced.id)
    wechat.fail_next("/cgi-bin/message/mass/send", 45009, "reach max api daily quota limit")
    notice, _ = await broadcasts.create_broadcast(services, BroadcastRequest(
        "town", "盛泽镇", "本周六上午盛泽镇各联络站都有代表接待，欢迎前往。", created_by="qu"))
    await broadcasts.send_pending(services, gateway, notice.id)
    other, _ = await broadcasts.create_broadcast(services, BroadcastRequest("station", "SZ-02", "南麻站的通知",
                                                                            created_by="nanma"))

    page = await signed_in(browser, base, "shengze", viewport={"width": 1366, "height": 900})
    await page.click("nav >> text=群发记录")
    rows = page.locator("tr.bc")
    assert [await r.get_attribute("data-id") for r in await rows.all()] == [str(other.id), str(notice.id),
                                                                           str(announced.id)]  # newest first
    town_row = await page.inner_text(f"tr.bc[data-id='{notice.id}']")
    assert "区人大赵主任" in town_row and "全镇订阅者" in town_row and "有发送失败" in town_row
    assert "1 批发送失败" in town_row and "已发出 0 / 12 人" in town_row
    reception_row = await page.inner_text(f"tr.bc[data-id='{announced.id}']")
    assert "盛泽镇王芳" in reception_row and "接待通知" in reception_row and "东方社区服务中心" in reception_row
    assert "订阅通知 2" in reception_row and "按名单群发 6" in reception_row and "已发完" in reception_row
    assert "已发出 8 / 8 人" in reception_row
    await no_english(page)
    await shot(page, "broadcast-list")

    await page.click(f"tr.bc[data-id='{notice.id}'] button:has-text('重试')")
    await page.wait_for_url(f"**/console/broadcasts/{notice.id}*")
    for _ in range(50):
        if "已发完" in await page.inner_text("h1"):
            break
        await asyncio.sleep(0.2)
        await page.reload()
    assert "已发完" in await page.inner_text("h1")
    await page.click("text=返回群发记录")
    assert "已发出 12 / 12 人" in await page.inner_text(f"tr.bc[data-id='{notice.id}']")
    assert sorted(c["openid"] for c in wechat.messages() if c["path"].endswith("/subscribe/bizsend")) == FOLLOWERS[1:3]

    station = await signed_in(browser, base, "nanma")  # 南麻站: its own only
    await station.goto(base + "/console/broadcasts")
    assert [await r.get_attribute("data-id") for r in await station.locator("tr.bc").all()] == [str(other.id)]
