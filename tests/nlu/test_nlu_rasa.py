"""The Rasa backend: a real server (CI starts one with nlu/rasa/serve.sh and sets ZTC_RASA_URL), and
the fallback to the embedded engine when the server is down, slow or answers garbage."""
from __future__ import annotations

import asyncio
import logging
import os
import socket

import pytest
from aiohttp import web

from bot.settings import Settings
from nlu import build_nlu
from nlu.rasa_backend import RasaNLU


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.rasa
@pytest.mark.skipif(not os.environ.get("ZTC_RASA_URL"), reason="ZTC_RASA_URL not set (no Rasa server)")
async def test_real_rasa_server_parses_through_the_backend(nlu):
    engine = build_nlu(Settings(nlu_backend="rasa", rasa_url=os.environ["ZTC_RASA_URL"], rasa_timeout=10))
    try:
        result = await engine.parse("我们村口的路灯坏了一个星期了，在松陵")
        assert result.backend == "rasa"
        assert result.intent == "report_issue"
        assert result.category == "城乡建设"  # categories come from the embedded engine
        places = result.entities_of("place")
        assert places and places[0].value == "松陵街道"  # EntitySynonymMapper, from places.yml
        assert all("confidence" in e for e in result.to_dict()["entities"])
        greet = await engine.parse("你好")
        assert greet.intent == "greet"
    finally:
        await engine.close()


async def test_nothing_listening_falls_back_with_a_warning(nlu, caplog):
    engine = RasaNLU(f"http://127.0.0.1:{_free_port()}", timeout=2.0, fallback=nlu)
    with caplog.at_level(logging.WARNING, logger="nlu.rasa_backend"):
        result = await engine.parse("着火了，快来人")
        again = await engine.parse("你好")
    await engine.close()
    assert result.backend == "embedded-fallback"
    assert result.intent == "emergency"
    assert again.intent == "greet"
    warnings = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings) == 1  # one clear line, not one per message
    assert engine.failures == 2


@pytest.fixture
async def fake_rasa():
    """A local server whose /model/parse misbehaves in the way the test picks."""
    mode = {"kind": "garbage"}
    release = asyncio.Event()

    async def parse(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        kind = mode["kind"]
        if kind == "garbage":
            return web.Response(text="<html>oops</html>", content_type="text/html")
        if kind == "wrong_json":
            return web.json_response({"intent": "greet"})
        if kind == "500":
            return web.Response(status=500, text="boom")
        if kind == "slow":
            await release.wait()
        return web.json_response({"text": body["text"], "intent": {"name": "greet", "confidence": 0.9},
                                  "entities": [], "intent_ranking": [{"name": "greet", "confidence": 0.9}]})

    app = web.Application()
    app.router.add_post("/model/parse", parse)
    runner = web.AppRunner(app)
    await runner.setup()
    port = _free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}", mode
    finally:
        release.set()
        await runner.cleanup()


@pytest.mark.parametrize("kind", ["garbage", "wrong_json", "500", "slow"])
async def test_misbehaving_server_falls_back(nlu, fake_rasa, kind):
    url, mode = fake_rasa
    mode["kind"] = kind
    engine = RasaNLU(url, timeout=0.3, fallback=nlu)
    result = await engine.parse("老板拖欠工资三个月了")
    await engine.close()
    assert result.backend == "embedded-fallback"
    assert result.intent == "report_issue"
    assert result.category == "劳动和社会保障"


async def test_good_server_answer_is_used_with_embedded_category(nlu, fake_rasa):
    url, mode = fake_rasa
    mode["kind"] = "ok"
    engine = RasaNLU(url, timeout=5, fallback=nlu)
    result = await engine.parse("老板拖欠工资三个月了")
    await engine.close()
    local = nlu.parse_sync("老板拖欠工资三个月了")
    assert result.backend == "rasa"
    assert (result.intent, result.confidence) == ("greet", 0.9)  # whatever the server says
    assert result.category == "劳动和社会保障"
    # `zhitongche nlu parse --backend rasa` prints this dict: its shape is public
    assert result.to_dict() == {
        "text": "老板拖欠工资三个月了", "intent": {"name": "greet", "confidence": 0.9}, "entities": [],
        "intent_ranking": [{"name": "greet", "confidence": 0.9}],
        "category": local["category"], "category_ranking": local["category_ranking"],
        "backend": "rasa",
    }
    assert list(result.to_dict()) == ["text", "intent", "entities", "intent_ranking", "category",
                                      "category_ranking", "backend"]


async def test_places_learnt_from_the_stations_stand_in_until_rasa_knows_them(nlu, fake_rasa):
    from bot.core.people import Station, StationKind
    from nlu.embedded import EmbeddedNLU

    url, mode = fake_rasa
    mode["kind"] = "ok"  # the server's model finds no entities
    engine = RasaNLU(url, timeout=5, fallback=EmbeddedNLU(nlu.model))  # its own engine
    await engine.learn_places([Station("HT-01", "西村代表联络站", StationKind.STATION, "湖塘镇", places=("西村",))])
    result = await engine.parse("湖塘镇西村的河道里漂着很多垃圾")
    await engine.close()
    assert result.backend == "rasa"
    assert [e.value for e in result.entities_of("place")] == ["湖塘镇", "西村"]
