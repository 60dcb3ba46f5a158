"""Helpers for the simulator tests (fixtures re-exported by conftest.py): a minimal but real WeChat webhook (wechatpy verifies the signature
and decrypts), the project's fake WeChat API, and the simulator itself — all on free local ports."""
from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from bot.settings import Settings
from bot.simulator import create_simulator_app
from bot.wechat.fake_api import FakeWeChatAPI

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TOKEN = "sim-test-token"
APPID = "wx00000000simtest"
IDENTITIES = [
    {"openid": "demo-citizen-1", "label": "市民 张阿姨"},
    {"openid": "demo-citizen-2", "label": "市民 李师傅"},
    {"openid": "demo-deputy-D001", "label": "代表 沈某甲（松陵街道代表之家）"},
]
PUSH_TRIGGER = "请推送"  # the stub webhook answers this with a customer-service and a template push


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


@dataclass
class StubWebhook:
    """What the official account's server must do, done with wechatpy: check the signature, decrypt
    in safe mode, parse, reply (encrypted when the request was)."""

    fake_api_url: str
    token: str = TOKEN
    received: list[dict[str, Any]] = field(default_factory=list)  # every accepted message
    rejected: int = 0
    answer: str | None = None  # when set, the response body instead of a reply (e.g. "success")
    forge_reply_signature: bool = False  # encrypted replies carry a MsgSignature not made with our token

    def __post_init__(self) -> None:
        self.crypto = WeChatCrypto(self.token, AES_KEY, APPID)

    async def handle(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            check_signature(self.token, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
        except InvalidSignatureException:
            self.rejected += 1
            return web.Response(status=403, text="bad signature")
        body = await request.text()
        encrypted = q.get("encrypt_type") == "aes"
        if encrypted:
            try:
                body = self.crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"])
            except Exception:
                self.rejected += 1
                return web.Response(status=403, text="bad msg_signature")
        message = parse_message(body)
        self.received.append({"encrypted": encrypted, "message": message, "xml": body, "query": dict(q)})
        if message.type == "text":
            answer = f"已收到您的消息：{message.content}"
            if message.content == PUSH_TRIGGER:
                await self.push(message.source)
        elif message.type == "voice":
            answer = f"已收到语音：{message.recognition}"
        elif message.type == "location":
            answer = f"已收到位置：{message.label}"
        elif message.type == "image":
            answer = "已收到图片"
        elif message.type == "event":
            answer = f"欢迎关注，事件 {message.event}，场景 {getattr(message, 'scene_id', '') or '无'}"
        else:
            answer = "收到"
        if self.answer is not None:
            return web.Response(text=self.answer, content_type="text/plain")
        reply = TextReply(source=message.target, target=message.source, content=answer).render()
        if encrypted:
            reply = self.crypto.encrypt_message(reply, q["nonce"], q["timestamp"])
            if self.forge_reply_signature:
                reply = reply.replace("<MsgSignature><![CDATA[", "<MsgSignature><![CDATA[0", 1)
        return web.Response(text=reply, content_type="application/xml")

    async def push(self, openid: str) -> None:
        async with aiohttp.ClientSession(self.fake_api_url) as http:
            async with http.get("/cgi-bin/token", params={"grant_type": "client_credential", "appid": APPID,
                                                          "secret": "s"}) as r:
                token = (await r.json())["access_token"]
            await http.post("/cgi-bin/message/custom/send", params={"access_token": token},
                            json={"touser": openid, "msgtype": "text", "text": {"content": "这是一条客服消息推送"}})
            await http.post("/cgi-bin/message/template/send", params={"access_token": token},
                            json={"touser": openid, "template_id": "TPL-STATUS",
                                  "data": {"thing2": {"value": "您的诉求有新进展"}, "character_string1": {"value": "#1"}}})


@dataclass
class SimulatorRig:
    url: str
    webhook: StubWebhook
    fake_api: FakeWeChatAPI


@pytest.fixture
async def rig() -> AsyncIterator[SimulatorRig]:
    runners = []
    fake = FakeWeChatAPI()
    runner, fake_url = await serve(fake.create_app())
    runners.append(runner)
    webhook = StubWebhook(fake_url)
    hook_app = web.Application()
    hook_app.router.add_post("/wechat", webhook.handle)
    runner, hook_url = await serve(hook_app)
    runners.append(runner)
    settings = Settings(wechat_token=TOKEN, wechat_aes_key=AES_KEY, wechat_appid=APPID)
    sim = create_simulator_app(webhook_url=f"{hook_url}/wechat", fake_api_url=fake_url,
                               settings=settings, identities=IDENTITIES)
    runner, sim_url = await serve(sim)
    runners.append(runner)
    try:
        yield SimulatorRig(sim_url, webhook, fake)
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        chromium = await p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def phone_page(browser: Any) -> AsyncIterator[Any]:
    """A phone-sized page (the simulator must be usable on one)."""
    context = await browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                        locale="zh-CN")
    page = await context.new_page()
    try:
        yield page
    finally:
        await context.close()


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
        for _ in range(1800):  # migrations + seeding: seconds on a cold start, minutes on a loaded machine
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
