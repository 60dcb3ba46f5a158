"""Stations and deputies administration in headless Chromium, as a town's staff member does it:
import a deputies list with bad rows (preview, then save), edit a station, print a bind-code slip,
unbind a deputy. Screenshots: tests/browser/artifacts/console-admin-*.png (look at them)."""
from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
from simrig import ARTIFACTS, serve

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
from rig import NOW, PASSWORD, build_rig  # noqa: E402

from storage.migrate import upgrade  # noqa: E402
from storage.sql import SqlUnitOfWorkFactory  # noqa: E402

pytestmark = pytest.mark.browser
# Excel's own 另存为 dialog names these; nothing else in Latin letters where staff look
EXCEL_WORDS = {"Excel", "CSV", "xlsx", "csv"}  # and the file name the user chose
DEPUTIES_CSV = ("编号,姓名,级别,站点编号,手机\n"
                "D301,钱新华,区,SZ-01,13800000301\n"
                "D302,孙丽,乡,SZ-01,13800000302\n"
                "D303,周强,镇,QD-01,13800000303\n"
                "D304,吴敏,镇,SZ-02,1380000\n"
                "D305,郑红,镇,SZ-02,0512-63000305\n")


@pytest.fixture
async def console(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'console.db'}"
    await asyncio.to_thread(upgrade, url)
    factory = SqlUnitOfWorkFactory(url)
    rig = await build_rig(factory)
    runner, base = await serve(rig.app)
    try:
        yield base, factory
    finally:
        await runner.cleanup()
        await factory.dispose()


async def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"console-admin-{name}.png"), full_page=True)


async def no_english(page) -> None:
    words = [w for w in re.findall(r"[A-Za-z]{3,}", await page.inner_text("body")) if w not in EXCEL_WORDS]
    assert words == [], words


async def test_import_edit_bind_code_and_unbind(browser, console, tmp_path: Path) -> None:
    base, factory = console
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = await context.new_page()
    await page.goto(base + "/console/login")
    await page.fill("input[name=username]", "shengze")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("main button[type=submit]")
    await page.wait_for_url(base + "/console/")

    # import: the deputies page's button, a GBK CSV as Excel saves it, a preview of every row
    await page.goto(base + "/console/deputies")
    await page.click("text=导入表格")
    await page.check("input[name=kind][value=deputies]")
    csv_file = tmp_path / "盛泽镇代表名单.csv"
    csv_file.write_bytes(DEPUTIES_CSV.encode("gbk"))
    await page.set_input_files("input[name=file]", str(csv_file))
    await no_english(page)
    await shot(page, "import-form")
    await page.click("main button[type=submit]")
    bad = await page.inner_text("table.bad-rows")
    assert "第 3 行" in bad and "乡" in bad  # a level that does not exist
    assert "第 4 行" in bad and "这一行是七都镇的，不属于盛泽镇" in bad  # another town's station
    assert "第 5 行" in bad and "1380000" in bad  # a phone number too short
    good = await page.inner_text("table.good-rows")
    assert "D301" in good and "D305" in good and "D302" not in good
    await no_english(page)
    await shot(page, "import-preview")
    await page.click("text=保存可以导入的 2 行")
    assert "新增 2，修改 0，没有变化 0，跳过有问题的 3 行" in await page.inner_text("main")
    await shot(page, "import-saved")
    await page.goto(base + "/console/deputies?q=郑红")
    assert "05126300030" in (await page.inner_text("table.list")).replace("-", "")

    # edit a station from the list
    await page.goto(base + "/console/stations")
    await page.locator("tr", has_text="SZ-02").locator("text=修改").click()
    await page.fill("input[name=name]", "盛泽镇南麻社区代表联络站")
    await page.fill("input[name=address]", "南麻路18号")
    await page.fill("input[name=places]", "南麻社区、坛丘村")
    await no_english(page)
    await page.click("text=保存修改")
    assert "已保存" in await page.inner_text(".saved")
    await shot(page, "station-edit")
    async with factory() as uow:
        station = await uow.stations.get("SZ-02")
    assert (station.name, station.places) == ("盛泽镇南麻社区代表联络站", ("南麻社区", "坛丘村"))

    # a bind-code slip for a deputy who has not bound WeChat, on screen and as printed
    await page.goto(base + "/console/deputies")
    await page.click("text=王秀英")
    await no_english(page)
    await shot(page, "deputy")
    await page.click("text=生成并打印绑定码")
    code = re.search(r"绑定 (\d{6})", await page.inner_text(".slip-code")).group(1)
    size = await page.eval_on_selector(".slip-code", "e => parseFloat(getComputedStyle(e).fontSize)")
    assert size >= 48  # readable at arm's length
    await no_english(page)
    await shot(page, "slip")
    await page.emulate_media(media="print")
    assert not await page.is_visible("header.top")  # the slip alone on paper
    await shot(page, "slip-print")
    await page.emulate_media(media="screen")
    async with factory() as uow:
        assert await uow.bind_codes.consume(code, NOW) == "D102"

    # unbind: confirmed in a dialog, then said on the page
    await page.goto(base + "/console/deputies/D101/edit")
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.click("text=解除微信绑定")
    assert "已解除沈建国代表的微信绑定" in await page.inner_text(".saved")
    await shot(page, "unbound")
    await context.close()

