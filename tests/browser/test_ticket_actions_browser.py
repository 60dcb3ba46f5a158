"""One full staff action in headless Chromium against a running bot (BotApp: bus, outbox, delivery
worker) and the project's fake WeChat API: a town account reassigns a ticket on its page, and the
fake API receives the new deputy's, the citizen's and the previous deputy's pushes. Then the
visitor's report page. Screenshots in tests/browser/artifacts/ (look at them)."""
from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from simrig import serve
from test_console_browser import no_english, shot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
from rig import ACCOUNTS, PASSWORD  # noqa: E402
from seed import CITIZEN, seed  # noqa: E402

from bot.bootstrap import BotApp  # noqa: E402
from bot.console.auth import create_account  # noqa: E402
from bot.core.parse import ParseResult  # noqa: E402
from bot.core.people import Deputy, Station  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.wechat.fake_api import FakeWeChatAPI  # noqa: E402
from handlers.delivery import record_inbound  # noqa: E402

pytestmark = pytest.mark.browser
NEW_DEPUTY = "oid-d103"


class _PlainNLU:
    async def parse(self, text: str) -> ParseResult:
        return ParseResult.fallback(text)

    async def learn_places(self, stations: Sequence[Station]) -> None:
        return None


@pytest.fixture
async def live(tmp_path: Path):
    fake = FakeWeChatAPI()
    fake_runner, fake_url = await serve(fake.create_app())
    settings = Settings(_env_file=None, database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",  # type: ignore[call-arg]
                        wechat_api_base=fake_url, redis_url="")
    bot = BotApp(settings, nlu=_PlainNLU())
    await bot.start()
    try:
        numbers = await seed(bot.uow_factory)  # the plain storage: seeding pushes nothing
        async with bot.uow_factory() as uow:
            await uow.deputies.upsert(Deputy("D103", "刘红梅", "镇", "SZ-01", "13800000103"))
            await uow.deputies.bind("D103", NEW_DEPUTY)
            await uow.commit()
        fields = ACCOUNTS["shengze"]
        await create_account(bot.uow_factory, bot.clock, username="shengze", password=PASSWORD, **fields)
        async with bot.uow_factory() as uow:
            account = await uow.staff.get("shengze")
            account.must_change_password = False
            await uow.staff.save(account)
            await uow.commit()
        for openid in (CITIZEN, NEW_DEPUTY, "oid-d101"):  # they wrote lately: customer-service messages
            await record_inbound(bot.services, openid)
        runner, base = await serve(bot.web_app)
        try:
            yield base, numbers, fake
        finally:
            await runner.cleanup()
    finally:
        await bot.stop()
        await fake_runner.cleanup()


async def _done(page, button: str) -> str:
    """Submit a form; the success line of the page it leads to."""
    await page.click(button)
    await page.wait_for_selector(".done")
    return await page.inner_text(".done")


async def _received(fake: FakeWeChatAPI, openid: str, needle: str) -> str:
    for _ in range(150):
        for text in fake.sent_texts(openid):
            if needle in text:
                return text
        await asyncio.sleep(0.1)
    raise AssertionError(f"{openid} got no push with {needle!r}: {fake.sent_texts(openid)}")


async def test_reassign_in_the_browser_pushes_to_deputy_and_citizen(browser, live) -> None:
    base, numbers, fake = live
    n = numbers["late"]  # 盛泽 SZ-01, with 沈建国 (D101)
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="zh-CN")
    page = await context.new_page()
    await page.goto(base + f"/console/tickets/{n}")
    await page.fill("input[name=username]", "shengze")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("main button[type=submit]")
    await page.wait_for_url(f"**/console/tickets/{n}")
    assert "分配给代表" in await page.inner_text("#actions")
    await no_english(page)
    await shot(page, "ticket-actions")

    await page.select_option("select[name=deputy_code]", "D103")
    done = await _done(page, "#actions form[action$='/assign'] button[type=submit]")
    assert "已分配给刘红梅代表。已经告诉刘红梅代表。已经告诉群众。" in done  # both wrote lately: sent
    assert "刘红梅" in await page.inner_text(".facts")
    await shot(page, "ticket-reassigned")

    assert f"#{n}" in await _received(fake, NEW_DEPUTY, "新工单")
    assert f"#{n}" in await _received(fake, CITIZEN, "刘红梅代表")
    assert f"#{n}" in await _received(fake, "oid-d101", "改派")

    # a message to the citizen, from the station
    await page.fill("#actions textarea[name=text]", "刘代表明天上午会去现场看看。")
    assert "已经告诉群众" in await _done(page, "#actions form[action$='/message'] button[type=submit]")
    await _received(fake, CITIZEN, "刘代表明天上午会去现场看看")

    # a bad duplicate number: the reason, in Chinese, with the field's name; what was typed kept
    await page.fill("input[name=original]", "99999")
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.click("#actions form[action$='/duplicate'] button[type=submit]")
    await page.wait_for_selector(".error")
    assert "合并到工单编号：没有找到工单 #99999" in await page.inner_text(".error")
    assert await page.input_value("input[name=original]") == "99999"
    await no_english(page)
    await shot(page, "ticket-action-refused")

    # 登记来访诉求: a visitor without WeChat
    await page.click("nav >> text=登记来访")
    await page.fill("input[name=summary]", "东方路的窨井盖松动")
    await page.fill("input[name=place]", "盛泽镇东方社区")
    await page.select_option("select[name=category]", "城乡建设")
    await page.fill("input[name=phone]", "0512-6300 1234")
    await no_english(page)
    await shot(page, "visitor-form")
    await page.click("main form button[type=submit]")
    # 盛泽 has no 代表之家 and no station lists 东方社区: the account is asked to choose, nothing typed lost
    await page.wait_for_selector(".error")
    assert "联络站：按地点分不到您管理的联络站" in await page.inner_text(".error")
    assert await page.input_value("input[name=summary]") == "东方路的窨井盖松动"
    await shot(page, "visitor-choose-station")
    await page.select_option("select[name=station]", "SZ-01")
    assert "来访诉求已登记为工单" in await _done(page, "main form button[type=submit]")
    assert "来访登记" in await page.inner_text("h1")
    await no_english(page)
    await shot(page, "visitor-filed")
    await context.close()
