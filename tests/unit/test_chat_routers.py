"""The router mechanics: a new chat mode is one scene module plus one line in the router order;
one scene state per user; expiry said once for any scene; unreadable state dropped."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

import storage.kv
from bot.core.inbound import Inbound
from fakes import FixedClock, make_services
from handlers.chat import ROUTERS, report
from handlers.chat.router import TEXTS, Context, Dispatcher, Router, Scene
from bot.core import keys
from handlers.chat.state import EXPIRED_KEPT, SceneState
from handlers.services import Services

USER = "oCitizenQQQQ0001"
QA_TTL = 600


# --- a toy live-Q&A mode, written the way a new mode is written ------------------------------------
async def _qa_start(ctx: Context) -> str | None:
    if ctx.text != "提问":
        return None  # not mine
    await ctx.enter("qa", {"questions": []})
    return "请提问"


async def _qa(ctx: Context) -> str:
    assert ctx.state is not None
    if ctx.text == "结束":
        await ctx.leave()
        return "问答结束"
    questions = [*ctx.state.data["questions"], ctx.text]
    await ctx.save({"questions": questions})
    return f"收到第{len(questions)}个问题"


QA = Scene("qa", _qa, kinds=TEXTS, ttl=lambda services: QA_TTL, reminder=lambda ctx: "（问答进行中）",
           start=Router("qa-start", _qa_start, kinds=frozenset({"text"})),
           expired_text="form_expired", is_answer=lambda ctx: ctx.text == "结束")

# the one line: right after the report scene
ORDER = ROUTERS[:ROUTERS.index(report.scene) + 1] + (QA,) + ROUTERS[ROUTERS.index(report.scene) + 1:]


class Chat:
    def __init__(self, services: Services, clock: FixedClock) -> None:
        self.services, self.clock = services, clock
        self.dispatcher = Dispatcher(services, ORDER)
        self.n = 0

    async def send(self, kind: str = "text", **fields: object) -> str | None:
        self.n += 1
        return await self.dispatcher.handle(Inbound(openid=USER, kind=kind, created_at=1_700_000_000 + self.n,
                                                    msg_id="" if kind == "event" else str(self.n), **fields))

    async def record(self) -> dict | None:
        raw = await self.services.kv.get(keys.scene(USER))
        return json.loads(raw) if raw else None


@pytest.fixture
def chat() -> Chat:
    clock = FixedClock()
    return Chat(make_services(clock), clock)


async def test_a_new_scene_plugged_in_by_one_line_takes_its_messages(chat: Chat) -> None:
    assert await chat.send(text="提问") == "请提问"
    assert await chat.send(text="路灯什么时候修") == "收到第1个问题"
    assert await chat.send(text="帮助") == "收到第2个问题"  # the scene comes before citizen commands
    record = await chat.record()
    assert record is not None and record["scene"] == "qa"
    assert record["data"] == {"questions": ["路灯什么时候修", "帮助"]}
    assert set(record) == {"scene", "data", "started_at", "expires_at"}
    # a router after the scenes answers (the menu's 帮助) with the scene's reminder
    help_reply = await chat.send(kind="event", event="click", event_key="help")
    assert help_reply == chat.services.texts.get("citizen_help") + "\n\n（问答进行中）"
    assert await chat.send(text="结束") == "问答结束"
    assert await chat.record() is None
    # outside the scene, the same words go to the citizen routers again
    assert await chat.send(text="帮助") == chat.services.texts.get("citizen_help")


async def test_without_the_line_the_mode_does_not_exist(chat: Chat) -> None:
    plain = Dispatcher(chat.services, ROUTERS)
    reply = await plain.handle(Inbound(openid=USER, kind="text", text="提问", msg_id="1"))
    assert reply != "请提问" and await chat.record() is None


async def test_one_scene_at_a_time_entering_another_replaces_it(chat: Chat) -> None:
    await chat.send(text="提问")
    started = await chat.send(kind="image", media_id="M1", pic_url="http://x/1.jpg")  # not taken by qa
    assert chat.services.texts.get("form_ask_what") in started
    record = await chat.record()
    assert record is not None and record["scene"] == "report"
    assert await chat.send(text="路灯什么时候修") != "收到第1个问题"  # now a report answer


async def test_expiry_is_said_once_for_any_scene(chat: Chat) -> None:
    await chat.send(text="提问")
    chat.clock.advance(seconds=QA_TTL - 1)
    assert await chat.send(text="第二个问题") == "收到第1个问题"  # each answer renews the expiry
    chat.clock.advance(seconds=QA_TTL)
    assert await chat.send(text="结束") == chat.services.texts.get("form_expired", minutes=QA_TTL // 60)
    assert await chat.record() is None
    assert await chat.send(text="结束") != chat.services.texts.get("form_expired", minutes=QA_TTL // 60)


async def test_an_expired_scene_and_a_text_that_is_no_answer_goes_on_as_usual(chat: Chat) -> None:
    await chat.send(text="提问")
    chat.clock.advance(seconds=QA_TTL + 1)
    assert await chat.send(text="帮助") == chat.services.texts.get("citizen_help")
    assert await chat.record() is None


class FakeTime:
    def __init__(self) -> None:
        self.value = 1000.0

    def monotonic(self) -> float:
        return self.value


@pytest.mark.parametrize(("late", "notice"), [(EXPIRED_KEPT - timedelta(seconds=1), True),
                                              (EXPIRED_KEPT + timedelta(seconds=1), False)])
async def test_the_record_outlives_its_expiry_only_for_the_notice(
    chat: Chat, monkeypatch: pytest.MonkeyPatch, late: timedelta, notice: bool
) -> None:
    fake_time = FakeTime()
    monkeypatch.setattr(storage.kv, "time", fake_time)
    await chat.send(text="提问")
    state = SceneState.from_json(await chat.services.kv.get(keys.scene(USER)))
    assert state.expires_at - state.started_at == timedelta(seconds=QA_TTL)
    wait = QA_TTL + late.total_seconds()
    chat.clock.advance(seconds=wait)
    fake_time.value += wait
    expired = chat.services.texts.get("form_expired", minutes=QA_TTL // 60)
    assert (await chat.send(text="结束") == expired) is notice


@pytest.mark.parametrize("raw", ["not json", "[]", '{"scene": "qa"}', '{"scene": "qa", "data": [], '
                                 '"started_at": "2026-01-01T00:00:00", "expires_at": "2026-01-01T00:00:00"}',
                                 json.dumps({"scene": "gone", "data": {}, "started_at": "2026-12-07T10:00:00",
                                             "expires_at": "2099-01-01T00:00:00"})])
async def test_unreadable_or_unknown_state_is_dropped(chat: Chat, raw: str) -> None:
    await chat.services.kv.set(keys.scene(USER), raw)
    assert await chat.send(text="帮助") == chat.services.texts.get("citizen_help")
    assert await chat.record() is None
