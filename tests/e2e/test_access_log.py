"""WeChat puts the sender's openid in the webhook's query string: the access log leaves it out."""
from __future__ import annotations

import logging

import aiohttp
from aiohttp import web

from bot.bootstrap import PathOnlyAccessLogger


async def test_access_log_has_the_path_but_not_the_query(caplog, unused_tcp_port: int) -> None:
    async def answer(request: web.Request) -> web.Response:
        return web.Response(text="success")

    app = web.Application()
    app.router.add_post("/wechat", answer)
    runner = web.AppRunner(app, access_log_class=PathOnlyAccessLogger)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", unused_tcp_port).start()
    try:
        with caplog.at_level(logging.INFO, logger="aiohttp.access"):
            async with aiohttp.ClientSession() as session:
                url = f"http://127.0.0.1:{unused_tcp_port}/wechat?openid=oSecretOpenid123456&nonce=1"
                async with session.post(url, data=b"<xml/>") as response:
                    assert response.status == 200
    finally:
        await runner.cleanup()
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any("POST /wechat 200" in line for line in lines), lines
    assert not any("oSecretOpenid123456" in line for line in lines)
