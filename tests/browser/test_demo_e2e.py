"""End to end through the real demo (`zhitongche demo`: bot + fake WeChat API + simulator, seeded with
config/demo/): a citizen files a report in the browser, the on-duty deputy gets the push and answers by
message, and the citizen sees the answer — every message real signed, some AES-encrypted, XML."""
from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.texts import default_texts
from simrig import ARTIFACTS

pytestmark = pytest.mark.browser

SL01_DEPUTIES = ("D004", "D005")  # config/demo/deputies.csv: the two deputies of 流虹社区代表联络站 (SL-01)


def three_free_ports() -> int:
    """A port p with p+1 and p+2 free too (run_demo serves on p, p+1, p+2)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + 2 > 65535:
            continue
        try:
            with socket.socket() as a, socket.socket() as b, socket.socket() as c:
                a.bind(("127.0.0.1", base))
                b.bind(("127.0.0.1", base + 1))
                c.bind(("127.0.0.1", base + 2))
        except OSError:
            continue
        return base
    raise RuntimeError("no three consecutive free ports")


@pytest.fixture
async def demo(tmp_path) -> AsyncIterator[int]:
    from bot.demo import run_demo

    port = three_free_ports()
    stop = asyncio.Event()
    task = asyncio.create_task(run_demo("127.0.0.1", port, tmp_path / "demo.db", stop))
    async with aiohttp.ClientSession() as http:
        for _ in range(1800):  # migrations + seeding take seconds on a cold start, minutes on a loaded machine
            if task.done():
                task.result()  # the demo crashed: show why
            try:
                async with http.get(f"http://127.0.0.1:{port}/") as r:
                    if r.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError("the demo did not start")
    try:
        yield port
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def say(page, text: str) -> str:
    """Type and send `text` as the current identity; the answer bubble's text (passive or system)."""
    answers = page.locator(".msg:not(.mine)")
    before = await answers.count()
    await page.click(".tab[data-kind=text]")
    await page.fill("#text-input", text)
    await page.click("#send")
    await answers.nth(before).wait_for()
    return await answers.nth(before).locator(".bubble").inner_text()


async def pushes_to(port: int, openid: str) -> list[dict]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port + 2}/_fake/calls", params={"openid": openid, "since": "0"}) as r:
            return (await r.json())["messages"]


async def test_report_reaches_the_on_duty_deputy_and_the_answer_comes_back(demo: int, phone_page) -> None:
    texts = default_texts()
    port, page = demo, phone_page
    await page.goto(f"http://127.0.0.1:{port}/")

    # the deputies of SL-01 have written to the account before, so WeChat lets the bot push to them
    for code in SL01_DEPUTIES:
        await page.select_option("#identity", f"demo-deputy-{code}")
        await say(page, "我的工单")

    await page.select_option("#identity", "demo-citizen-1")
    await page.click(".switch .slider")  # 安全模式: this conversation goes AES-encrypted
    assert await page.is_checked("#safe-mode")
    first = await say(page, "我们村口的路灯坏了")
    assert first  # the form starts (asks where, since no place was named)
    answer = await say(page, "松陵街道 流虹社区")
    for _ in range(6):  # details, phone, consent, ... until the summary is shown for confirmation
        if "是" in answer and "提交" in answer:
            break
        if answer == texts.get("form_ask_phone"):
            answer = await say(page, "跳过")
        else:
            answer = await say(page, "没有")
    filed = await say(page, "是")
    match = re.search(r"#(\d+)", filed)
    assert match, filed
    number = match.group(1)
    assert await page.locator(".msg.mine .badge.enc").count() >= 4

    # the on-duty deputy of SL-01 got a customer-service push with the ticket number
    async def assigned_deputy() -> str:
        while True:
            for code in SL01_DEPUTIES:
                if any(f"#{number}" in (m.get("text") or "") for m in await pushes_to(port, f"demo-deputy-{code}")):
                    return code
            await asyncio.sleep(0.2)

    deputy = await asyncio.wait_for(assigned_deputy(), 20)
    # while we still play the citizen, the deputy's entry in 我是 shows the unread push
    await page.wait_for_function(
        f"document.querySelector('#identity option[value=demo-deputy-{deputy}]').textContent.includes('条新消息')"
    )
    await page.select_option("#identity", f"demo-deputy-{deputy}")
    notice = page.locator(".msg.theirs[data-via=customer_service]", has_text=f"#{number}")
    await notice.first.wait_for()

    await say(page, f"#{number} 已联系路灯所，明天上午来修")

    # the citizen sees the deputy's answer, pushed as a customer-service message
    await page.select_option("#identity", "demo-citizen-1")
    relayed = page.locator(".msg.theirs[data-via=customer_service]", has_text="明天上午来修")
    await relayed.first.wait_for()
    assert await relayed.first.locator(".via").inner_text() == "客服消息"
    await page.screenshot(path=str(ARTIFACTS / "demo-citizen.png"))
