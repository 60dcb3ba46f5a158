"""The simulator page in a real headless Chromium, against a wechatpy-checked stub webhook."""
from __future__ import annotations

import pytest
from simrig import ARTIFACTS, PUSH_TRIGGER, SimulatorRig

pytestmark = pytest.mark.browser


async def test_citizen_reports_in_plain_and_safe_mode(rig: SimulatorRig, phone_page) -> None:
    page = phone_page
    await page.goto(rig.url + "/")
    assert await page.title() == "直通车 聊天模拟器"

    await page.select_option("#identity", "demo-citizen-1")
    await page.fill("#text-input", "我们村口的路灯坏了")
    await page.click("#send")
    reply = page.locator(".msg.theirs[data-via=passive] .bubble").last
    await reply.wait_for()
    assert await reply.inner_text() == "已收到您的消息：我们村口的路灯坏了"
    assert await page.locator(".msg.mine .bubble").last.inner_text() == "我们村口的路灯坏了"
    assert await page.locator(".msg.theirs .via").last.inner_text() == "被动回复"
    assert rig.webhook.received[-1]["encrypted"] is False

    # 安全模式 is under 更多 on a phone; the slider is the visible control (the checkbox is hidden)
    await page.click("#more")
    await page.click(".switch .slider")
    assert await page.is_checked("#safe-mode")
    assert "安全模式" in await page.inner_text("#safe-mode-label")
    await page.fill("#text-input", "路灯一个星期都没修")
    await page.press("#text-input", "Enter")
    await page.locator(".msg.theirs[data-via=passive]").nth(1).wait_for()
    assert rig.webhook.received[-1]["encrypted"] is True
    assert rig.webhook.received[-1]["message"].content == "路灯一个星期都没修"
    assert "已加密" in await page.locator(".msg.mine .meta").last.inner_text()
    assert await page.locator(".msg.theirs[data-via=passive] .bubble").nth(1).inner_text() == \
        "已收到您的消息：路灯一个星期都没修"

    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "simulator-phone.png"))


async def test_voice_location_subscribe_and_pushes(rig: SimulatorRig, phone_page) -> None:
    page = phone_page
    await page.goto(rig.url + "/")
    await page.select_option("#identity", "demo-citizen-2")

    await page.click(".tab[data-kind=voice]")
    await page.fill("#voice-input", "桥上的栏杆断了")
    await page.click("#send")
    await page.locator(".msg.theirs[data-via=passive]").nth(0).wait_for()

    await page.click(".tab[data-kind=location]")
    await page.fill("#location-input", "七都镇开弦弓村")
    await page.click("#send")
    await page.locator(".msg.theirs[data-via=passive]").nth(1).wait_for()

    await page.click(".tab[data-kind=subscribe]")
    await page.select_option("#scene", "station:QD-YM")  # from config/demo/stations.csv
    await page.click("#send")
    await page.locator(".msg.theirs[data-via=passive]").nth(2).wait_for()

    await page.click(".tab[data-kind=image]")
    await page.click("#send")
    await page.locator(".msg.theirs[data-via=passive]").nth(3).wait_for()

    kinds = [(r["message"].type, getattr(r["message"], "event", "")) for r in rig.webhook.received]
    assert kinds == [("voice", ""), ("location", ""), ("event", "subscribe_scan"), ("image", "")]
    assert rig.webhook.received[2]["message"].scene_id == "station:QD-YM"
    assert await page.locator(".msg.theirs .bubble").nth(1).inner_text() == "已收到位置：七都镇开弦弓村"

    # pushes for this citizen arrive by polling, labelled with their channel
    await page.click(".tab[data-kind=text]")
    await page.fill("#text-input", PUSH_TRIGGER)
    await page.click("#send")
    await page.locator(".msg.theirs[data-via=template]").wait_for()
    assert await page.locator(".msg.theirs[data-via=customer_service] .bubble").inner_text() == "这是一条客服消息推送"
    assert await page.locator(".msg.theirs[data-via=customer_service] .via").inner_text() == "客服消息"
    assert await page.locator(".msg.theirs[data-via=template] .via").inner_text() == "模板消息"

    # another identity has its own chat; coming back keeps this one's conversation
    await page.select_option("#identity", "demo-deputy-D001")
    assert await page.locator(".msg").count() == 0
    await page.select_option("#identity", "demo-citizen-2")
    assert await page.locator(".msg.theirs[data-via=template]").count() == 1

    await page.screenshot(path=str(ARTIFACTS / "simulator-pushes.png"))


async def test_retry_button_resends_same_msgid(rig: SimulatorRig, phone_page) -> None:
    page = phone_page
    await page.goto(rig.url + "/")
    await page.fill("#text-input", "重复消息测试")
    await page.click("#send")
    await page.locator(".msg.theirs[data-via=passive]").wait_for()
    await page.click("#more")
    await page.click("#resend")
    await page.locator(".msg.theirs[data-via=passive]").nth(1).wait_for()

    first, second = rig.webhook.received
    assert first["message"].id == second["message"].id
    assert "同一个 MsgId" in await page.locator(".msg.system").last.inner_text()


async def test_a_push_to_someone_else_shows_as_unread(rig: SimulatorRig, phone_page) -> None:
    page = phone_page
    await page.goto(rig.url + "/")
    await page.select_option("#identity", "demo-citizen-1")
    await rig.webhook.push("demo-deputy-D001")  # the bot pushes to a deputy while we play a citizen

    option = page.locator("#identity option[value=demo-deputy-D001]")
    await page.wait_for_function(
        "document.querySelector('#identity option[value=demo-deputy-D001]').textContent.includes('2 条新消息')"
    )
    assert await page.locator(".msg").count() == 0  # not in the citizen's chat

    await page.select_option("#identity", "demo-deputy-D001")
    assert await page.locator(".msg.theirs").count() == 2
    assert await option.text_content() == "代表 沈某甲（松陵街道代表之家）"
