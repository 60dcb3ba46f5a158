"""The simulator on a small phone (360×640) through the real demo (126 deputies): most of the screen
is chat, the empty page says how to start, the deputy picker is grouped by station and searchable,
no request 404s (favicon), and the page's polling stays out of the INFO log."""
from __future__ import annotations

import asyncio
import csv
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.settings import CONFIG_DIR
from simrig import ARTIFACTS

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 360, 640


def _rows(name: str) -> list[dict[str, str]]:
    with (CONFIG_DIR / "demo" / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
async def small_phone(browser: Any) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, device_scale_factor=2,
                                        locale="zh-CN")
    page = await context.new_page()
    try:
        yield page
    finally:
        await context.close()


async def _height(page: Any, selector: str) -> float:
    return (await page.locator(selector).bounding_box())["height"]


async def test_simulator_on_a_360x640_phone(demo: int, small_phone: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp.access")
    page, url = small_phone, f"http://127.0.0.1:{demo}/"
    responses: list[tuple[str, int]] = []
    page.on("response", lambda r: responses.append((r.url, r.status)))
    ARTIFACTS.mkdir(exist_ok=True)
    await page.goto(url)

    # the fixed header and composer leave the chat at least 60 % of the screen (they took 420 px)
    bars = await _height(page, "header.top") + await _height(page, "footer.composer")
    assert bars <= 0.4 * HEIGHT, bars
    hint = page.locator(".empty-hint")
    assert "扫码关注" in await hint.inner_text()
    await page.screenshot(path=str(ARTIFACTS / "phone-360-empty.png"))

    # the hint's button opens 扫码关注; scanning a station's code starts the chat and the hint goes
    await page.click(".empty-hint [data-start-subscribe]")
    assert await page.get_attribute(".tab[data-kind=subscribe]", "class") == "tab active"
    await page.select_option("#scene", "station:SL-01")
    await page.click("#send")
    await page.locator(".msg.theirs").first.wait_for()
    assert await hint.count() == 0
    await page.click(".tab[data-kind=text]")
    await page.fill("#text-input", "我们小区门口的路灯坏了一个星期了")
    await page.click("#send")
    await page.locator(".msg.theirs").nth(1).wait_for()
    assert await _height(page, "header.top") + await _height(page, "footer.composer") <= 0.4 * HEIGHT
    await page.screenshot(path=str(ARTIFACTS / "phone-360-chat.png"))

    # 126 deputies, one group per station, each deputy under their own station
    stations = {s["code"]: s["name"] for s in _rows("stations.csv")}
    deputies = _rows("deputies.csv")
    groups = await page.eval_on_selector_all(
        "#identity optgroup", "gs => gs.map(g => [g.label, [...g.querySelectorAll('option')].map(o => o.value)])")
    deputy_groups = {label: values for label, values in groups if values[0].startswith("demo-deputy-")}
    assert sum(len(v) for v in deputy_groups.values()) == len(deputies) == 126
    assert set(deputy_groups) == {stations[d["station_code"]] for d in deputies}
    for d in deputies:
        assert f"demo-deputy-{d['code']}" in deputy_groups[stations[d["station_code"]]]

    async def visible_deputies() -> list[str]:
        return await page.eval_on_selector_all(
            "#identity option:not([hidden])", "os => os.map(o => o.value).filter(v => v.startsWith('demo-deputy-'))")

    # search by a name: only that deputy is left, and picked
    target = deputies[40]
    await page.fill("#identity-search", target["name"])
    assert await visible_deputies() == [f"demo-deputy-{d['code']}" for d in deputies if target["name"] in d["name"]]
    assert await page.input_value("#identity") == f"demo-deputy-{target['code']}"
    await page.screenshot(path=str(ARTIFACTS / "phone-360-search.png"))
    # by a station: all of its deputies
    station = stations["SL-01"]
    await page.fill("#identity-search", station)
    assert sorted(await visible_deputies()) == sorted(
        f"demo-deputy-{d['code']}" for d in deputies if d["station_code"] == "SL-01")
    await page.fill("#identity-search", "没有这个人")
    assert "no-match" in await page.get_attribute("#identity-search", "class")
    await page.fill("#identity-search", "")
    assert len(await visible_deputies()) == 126

    # no 404 anywhere, the favicon included (the page names one; /favicon.ico answers too)
    icon = await page.get_attribute("link[rel=icon]", "href")
    async with aiohttp.ClientSession() as http:
        for path in (icon, "/favicon.ico"):
            async with http.get(url.rstrip("/") + path) as r:
                assert r.status == 200 and r.content_type == "image/svg+xml" and (await r.read()).startswith(b"<svg")
    assert [u for u, status in responses if status >= 400] == []

    # polling (every 1.5 s) is logged at DEBUG only; the page's own requests stay at INFO
    await asyncio.sleep(3.5)
    access = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "aiohttp.access"]
    polls = [level for level, msg in access if "/sim/pushes" in msg or "/_fake/calls" in msg]
    assert len(polls) >= 4 and set(polls) == {logging.DEBUG}
    assert any(level == logging.INFO and " / " in msg for level, msg in access)
