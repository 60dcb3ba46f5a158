"""Following stations' receptions in chat: 订阅 [place], 退订, 我的订阅, and the station QR code."""
from __future__ import annotations

import itertools

from bot.core.inbound import Inbound, InboundKind
from fakes import CITIZEN, make_services, seed
from handlers.chat import ROUTERS
from handlers.chat.router import Dispatcher

_ids = itertools.count(1)


async def chat():
    services = make_services()
    await seed(services)
    dispatcher = Dispatcher(services, ROUTERS)

    async def say(text: str) -> str:
        n = next(_ids)
        reply = await dispatcher.handle(Inbound(CITIZEN, InboundKind.TEXT, created_at=n, msg_id=str(n), text=text))
        assert reply is not None
        return reply

    async def scan(scene: str) -> str:
        reply = await dispatcher.handle(Inbound(CITIZEN, InboundKind.EVENT, created_at=next(_ids), event="scan", scene=scene))
        assert reply is not None
        return reply

    async def following() -> list[str]:
        async with services.uow() as uow:
            return [f.station_code for f in await uow.follows.of_citizen(CITIZEN)]

    return services, say, scan, following


async def test_follow_a_town_list_and_stop_one_then_all() -> None:
    services, say, _, following = await chat()
    assert await say("订阅") == services.texts.get("follow_which")  # no QR station, no name
    reply = await say("订阅 盛泽镇")
    assert "盛泽镇代表之家" in reply and "盛泽法律调解联络站" in reply
    assert await following() == ["SZ-HOME", "SZ-LAW"]
    assert "已经订阅" in await say("关注接待 盛泽镇代表之家")
    await say("订阅黎里镇代表之家")
    listed = await say("我的订阅")
    assert "· 盛泽镇代表之家" in listed and "· 黎里镇代表之家" in listed
    assert "盛泽法律调解联络站" in await say("退订 盛泽法律调解联络站")
    assert sorted(await following()) == ["LL-HOME", "SZ-HOME"]
    assert await say("订阅 火星") == services.texts.get("follow_unknown_place", name="火星")
    await say("退订")
    assert await following() == []
    assert await say("我的订阅") == services.texts.get("follow_none")


async def test_scanning_a_station_qr_code_follows_it_once() -> None:
    services, say, scan, following = await chat()
    reply = await scan("station:LL-DC")
    assert reply.endswith(services.texts.get("follow_scan_added"))
    assert await following() == ["LL-DC"]
    assert not (await scan("station:LL-DC")).endswith(services.texts.get("follow_scan_added"))
    await say("退订")
    assert "东村代表联络站" in await say("订阅")  # 订阅 alone: the QR station
    async with services.uow() as uow:
        assert [f.station_code for f in await uow.follows.untagged()] == ["LL-DC"]  # the tag job's work
