"""The staff console in headless Chromium: sign in, every page renders with data, charts draw and a
bar opens the tickets behind it. Screenshots go to tests/browser/artifacts/ (look at them)."""
from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
from simrig import ARTIFACTS, serve

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
from rig import PASSWORD, build_rig  # noqa: E402

from storage.migrate import upgrade  # noqa: E402
from storage.sql import SqlUnitOfWorkFactory  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture
async def console_url(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    await asyncio.to_thread(upgrade, url)
    factory = SqlUnitOfWorkFactory(url)
    rig = await build_rig(factory, must_change=True)
    runner, base = await serve(rig.app)
    try:
        yield base, rig
    finally:
        await runner.cleanup()
        await factory.dispose()


async def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


async def no_english(page) -> None:
    """No Latin words where staff look (codes like SZ-01 and numbers are fine)."""
    text = await page.inner_text("body")
    words = [w for w in re.findall(r"[A-Za-z]{3,}", text) if w not in {"Excel"}]
    assert words == [], words


async def test_sign_in_and_every_page(browser, console_url) -> None:
    base, rig = console_url
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = await context.new_page()
    await page.goto(base + "/console/tickets")
    assert page.url.startswith(base + "/console/login")
    await page.fill("input[name=username]", "shengze")
    await page.fill("input[name=password]", "错了")
    await page.click("main button[type=submit]")
    assert "用户名或密码不对" in await page.inner_text(".error")
    await shot(page, "login-wrong")

    await page.fill("input[name=username]", "shengze")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("main button[type=submit]")
    assert page.url.endswith("/console/password")  # first sign-in: a password of one's own first
    await page.fill("input[name=current]", PASSWORD)
    await page.fill("input[name=new]", "我的新密码12345")
    await page.fill("input[name=repeat]", "我的新密码12345")
    await shot(page, "password")
    await page.click("main button[type=submit]")
    assert page.url.endswith("/console/")

    await page.wait_for_selector("#chart-town[data-ready='1'] svg")
    await no_english(page)
    await shot(page, "dashboard")
    # a bar opens the tickets behind it
    await page.locator("#chart-category svg path[fill='#1f5fa8']").first.click()
    await page.wait_for_url("**/console/tickets?**category=**")
    assert "共" in await page.inner_text(".count")

    n = rig.numbers
    for name, path, expected in (
        ("tickets-waiting", "/console/tickets?tab=waiting", "路灯坏了三盏"),
        ("tickets-late", "/console/tickets?tab=late", "垃圾桶满了没人清"),
        ("tickets-resolved", "/console/tickets?tab=resolved", "已办结的诉求0"),
        ("ticket", f"/console/tickets/{n['waiting']}", "路灯不亮已经一个星期了"),
        ("stations", "/console/stations", "盛泽镇南麻联络站"),
        ("deputies", "/console/deputies", "王秀英"),
        ("duty", "/console/duty", "沈建国"),
        ("week", "/console/stations/SZ-01/week?week=2026-12-01", "09:00–12:00"),
    ):
        await page.goto(base + path)
        assert expected in await page.inner_text("main"), name
        await no_english(page)
        await shot(page, name)

    # an internal note from the ticket page lands on its timeline
    await page.goto(base + f"/console/tickets/{n['waiting']}")
    await page.fill("#timeline textarea[name=text]", "已请社区电工明天去看")
    await page.click("#timeline button[type=submit]")
    assert "已请社区电工明天去看" in await page.inner_text(".timeline")
    await shot(page, "ticket-with-note")

    # outside the town: the same page as a missing ticket
    await page.goto(base + f"/console/tickets/{n['other_town']}")
    assert "没有找到这个页面" in await page.inner_text("main")
    await context.close()


async def test_district_audit_and_tablet(browser, console_url) -> None:
    base, rig = console_url
    context = await browser.new_context(viewport={"width": 1024, "height": 768}, locale="zh-CN", has_touch=True)
    page = await context.new_page()
    await page.goto(base + "/console/login")
    await page.fill("input[name=username]", "qu")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("main button[type=submit]")
    await page.fill("input[name=current]", PASSWORD)
    await page.fill("input[name=new]", "区人大新密码123")
    await page.fill("input[name=repeat]", "区人大新密码123")
    await page.click("main button[type=submit]")
    await page.goto(base + "/console/audit")
    assert "修改密码" in await page.inner_text("main")
    await no_english(page)
    await shot(page, "audit")
    await page.goto(base + "/console/tickets")
    # nothing wider than the tablet's screen
    assert await page.evaluate("document.documentElement.scrollWidth") <= 1024
    await no_english(page)
    await shot(page, "tickets-tablet")
    await page.goto(base + "/console/duty")
    await shot(page, "duty-district")
    await context.close()


def test_echarts_is_vendored_with_its_license() -> None:
    vendor = Path(__file__).resolve().parents[2] / "bot" / "console" / "static" / "vendor" / "echarts"
    assert (vendor / "echarts.min.js").stat().st_size > 500_000
    assert "Apache License" in (vendor / "LICENSE").read_text()


async def test_demo_prints_a_console_login_that_works(capsys, demo) -> None:  # capsys first: it sees the banner
    import aiohttp

    printed = ""
    for _ in range(100):  # the login is printed just after the simulator starts answering
        printed += capsys.readouterr().out
        if "管理后台" in printed:
            break
        await asyncio.sleep(0.1)
    line = next(x for x in printed.splitlines() if "管理后台" in x)
    url, username, password = re.search(r"(http://\S+/console/)\s+用户名 (\S+)\s+密码 (\S+)", line).groups()
    assert url == f"http://127.0.0.1:{demo + 1}/console/"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # cookies for an IP host
        async with http.get(url + "login") as r:
            token = re.search(r'name="csrf" value="([^"]+)"', await r.text()).group(1)
        async with http.post(url + "login", data={"username": username, "password": password, "csrf": token}) as r:
            assert r.status == 200 and str(r.url) == url and "各镇（街道）工单数" in await r.text()
