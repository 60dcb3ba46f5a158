"""Exactly-once effects without trusting process memory: the record that a message was handled
is written in the transaction of its effect (handlers/bus.py), and the Dispatcher answers a
message that has a record from it. Here the key-value dedupe is bypassed (as when Redis came
back empty): the same Inbound reaches the Dispatcher twice."""
from __future__ import annotations

from typing import Any

import pytest
from test_chat import CITIZEN, DEPUTY_OPENID, World, file_report, world  # noqa: F401 - fixture

from bot.core.inbound import Inbound
from bot.core.outbound import OutboxMessage
from handlers.bus import BusUnitOfWork, handling_inbound


def text(openid: str, content: str, msg_id: str) -> Inbound:
    return Inbound(openid=openid, kind="text", created_at=1_700_100_000, msg_id=msg_id, text=content)


async def walk_to_confirm(w: World) -> None:
    await w.say("我们村口的路灯坏了一个星期了")
    await w.say("松陵街道 永康社区")
    await w.say("没有")
    await w.say("跳过")


async def test_a_retried_confirm_files_one_ticket_and_gets_the_same_reply(world: World) -> None:
    w = world
    await walk_to_confirm(w)
    confirm = text(CITIZEN, "是", "777001")
    first = await w.conversation.handle(confirm)
    again = await w.conversation.handle(confirm)
    [ticket] = await w.tickets()
    assert f"#{ticket.number}" in (first or "") and again == first
    async with w.uow() as uow:
        record = await uow.processed_inbound.get(confirm.dedupe_key)
    assert record is not None and record.ticket_number == ticket.number and record.reply == first


async def test_a_deputy_relay_retried_is_relayed_once(world: World) -> None:
    w = world
    ticket = await file_report(w, where="松陵街道 永康社区")
    relay = text(DEPUTY_OPENID, f"#{ticket.number} 明天上午去现场看", "777002")
    first = await w.conversation.handle(relay)
    assert await w.conversation.handle(relay) == first
    relayed = [t for t in await w.outbox_to(CITIZEN) if "明天上午去现场看" in t]
    assert len(relayed) == 1


async def test_a_crash_between_the_effect_and_its_reply_is_answered_with_the_number(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    await walk_to_confirm(w)
    confirm = text(CITIZEN, "是", "777003")

    async def crash(self: Any, key: str, reply: str) -> None:
        raise SystemExit  # stands for kill -9 after the commit: the reply is never stored

    monkeypatch.setattr(type(w.conversation), "_remember_reply", crash)
    with pytest.raises(SystemExit):
        await w.conversation.handle(confirm)
    monkeypatch.undo()
    [ticket] = await w.tickets()
    assert await w.conversation.handle(confirm) == w.t("inbound_already_handled_ticket", number=ticket.number)
    assert len(await w.tickets()) == 1


async def test_a_crash_before_the_commit_leaves_nothing_and_the_retry_files_it(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    await walk_to_confirm(w)
    confirm = text(CITIZEN, "是", "777004")
    real_commit = BusUnitOfWork.commit

    async def crash(self: BusUnitOfWork) -> None:
        raise SystemExit  # killed before the transaction committed

    monkeypatch.setattr(BusUnitOfWork, "commit", crash)
    with pytest.raises(SystemExit):
        await w.conversation.handle(confirm)
    monkeypatch.setattr(BusUnitOfWork, "commit", real_commit)
    assert await w.tickets() == []
    async with w.uow() as uow:
        assert await uow.processed_inbound.get(confirm.dedupe_key) is None
    reply = await w.conversation.handle(confirm)
    [ticket] = await w.tickets()
    assert f"#{ticket.number}" in (reply or "")


async def test_two_handlings_of_one_message_cannot_both_commit(world: World) -> None:
    """Two workers running the same message at once (the dedupe marker's lease ran out): the
    second commit fails on the record's key, so its effect is not stored."""
    w = world
    ticket = await file_report(w, where="松陵街道 永康社区")
    second = w.services.uow()
    with handling_inbound("msg:888"):
        async with w.services.uow() as uow:
            t = await uow.tickets.get(ticket.number)
            t.add_citizen_note("补充一句", w.clock.now())
            await uow.tickets.save(t)
            await uow.commit()
    with handling_inbound("msg:888"), pytest.raises(KeyError):
        async with second as uow:
            await uow.outbox.add(OutboxMessage(CITIZEN, "第二次"))
            await uow.commit()
    assert "第二次" not in await w.outbox_to(CITIZEN)


async def test_a_form_lost_with_the_store_is_said_once_at_the_first_answer(world: World) -> None:
    w = world
    await w.say("我们村口的路灯坏了一个星期了")
    await w.say("松陵街道 永康社区")
    w.advance(60)
    w.kv._data.clear()  # Redis came back empty: the form state is gone, the database is not
    w.advance(5)
    assert await w.say("你好呀") != w.t("form_lost")  # not an answer: nothing said about the form
    assert await w.say("13912345678") == w.t("form_lost")
    assert await w.say("13912345678") != w.t("form_lost")  # once
    assert await w.tickets() == []


async def test_a_finished_form_is_not_taken_for_a_lost_one(world: World) -> None:
    w = world
    await file_report(w, where="松陵街道 永康社区")
    w.advance(60)
    w.kv._data.clear()
    w.advance(5)
    assert await w.say("是") != w.t("form_lost")


async def test_a_user_found_with_nothing_lost_is_not_read_again_until_the_store_is_lost(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from storage.memory import MemoryCitizenRepository

    w = world
    reads: list[str] = []
    real_get = MemoryCitizenRepository.get

    async def counting_get(self: Any, openid: str) -> Any:
        reads.append(openid)
        return await real_get(self, openid)

    monkeypatch.setattr(MemoryCitizenRepository, "get", counting_get)
    await w.say("你好呀")
    checked = reads.count(CITIZEN)
    assert checked >= 1  # within a day of the store's epoch: looked up once
    await w.say("谢谢")
    await w.say("帮助")
    assert reads.count(CITIZEN) == checked  # remembered in the store
    await w.say("我们村口的路灯坏了一个星期了")
    await w.say("松陵街道 永康社区")
    w.advance(60)
    w.kv._data.clear()  # the store came back empty: the remembered check went with it
    w.advance(5)
    assert await w.say("13912345678") == w.t("form_lost")


async def test_a_first_delivery_is_not_looked_up_and_anything_else_is(world: World) -> None:
    """FIRST_DELIVERY (set by the webhook only for a message it knows is new) skips the record;
    were a retry wrongly taken for a first delivery, the record's key still refuses its effect."""
    from bot.core.inbound import FIRST_DELIVERY

    w = world
    ticket = await file_report(w, where="松陵街道 永康社区")
    relay = text(DEPUTY_OPENID, f"#{ticket.number} 下午就派人来修", "777005")
    first = await w.conversation.handle(relay)
    token = FIRST_DELIVERY.set(True)
    try:
        with pytest.raises(KeyError):  # not looked up: handled again, its commit refused
            await w.conversation.handle(relay)
    finally:
        FIRST_DELIVERY.reset(token)
    assert await w.conversation.handle(relay) == first  # looked up: answered from the record
    assert len([t for t in await w.outbox_to(CITIZEN) if "下午就派人来修" in t]) == 1
