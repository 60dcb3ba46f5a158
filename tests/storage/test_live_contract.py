"""Live sessions and questions: the memory and SQL stores keep the same contract (ids, keyword,
newest-first lists, a question changed by two units of work at once, the filing claimed once)."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.core.live import LiveQuestion, LiveSession, QuestionState
from bot.core.ports import ConcurrentUpdate

T0 = datetime(2026, 12, 1, 14, 0)


async def _session(uow_factory, **kw) -> LiveSession:
    async with uow_factory() as uow:
        session = await uow.live.add_session(LiveSession("S01", "直播", "", T0, T0 + timedelta(hours=2), ("D1",), **kw))
        await uow.commit()
    return session


async def test_sessions_keywords_and_questions(uow_factory) -> None:
    first = await _session(uow_factory)
    second = await _session(uow_factory, keyword="江村直播")
    assert first.keyword == f"直播{first.id}" and second.keyword == "江村直播"
    async with uow_factory() as uow:
        assert (await uow.live.session_by_keyword("江村直播")).id == second.id
        assert [s.id for s in await uow.live.sessions()] == [second.id, first.id]
        assert await uow.live.sessions(["S99"]) == []
        q = await uow.live.add_question(LiveQuestion(first.id, "oA", "问题", T0))
        q.attach("image", "m1", "u1", T0)
        await uow.live.save_question(q)
        await uow.commit()
    async with uow_factory() as uow:
        stored = await uow.live.get_question(q.id)
        assert (stored.text, stored.askers, stored.state, stored.attachments) == (
            "问题", ("oA",), QuestionState.NEW, ({"kind": "image", "media_id": "m1", "url": "u1"},))
        assert (await uow.live.last_question(first.id, "oA")).id == q.id
        assert await uow.live.last_question(first.id, "oB") is None
        assert [s.id for s in await uow.live.due_to_end(T0 + timedelta(hours=3))] == [first.id, second.id]
        assert await uow.live.due_to_end(T0) == []


async def test_a_question_changed_meanwhile_is_a_conflict(uow_factory, backend) -> None:
    if backend[0] == "sqlite":
        pytest.skip("one SQLite connection: two open units of work wait for each other")
    session = await _session(uow_factory)
    async with uow_factory() as uow:
        q = await uow.live.add_question(LiveQuestion(session.id, "oA", "问题", T0))
        q.asked()
        await uow.commit()
    first, second = uow_factory(), uow_factory()
    async with first, second:
        a = await first.live.get_question(q.id)
        b = await second.live.get_question(q.id)
        a.give_answer("一", "甲", T0)
        await first.live.save_question(a)
        await first.commit()
        b.give_answer("二", "乙", T0)
        with pytest.raises(ConcurrentUpdate):
            await second.live.save_question(b)
            await second.commit()
    async with uow_factory() as uow:
        assert (await uow.live.get_question(q.id)).answer == "一"


async def test_the_filing_is_claimed_once(uow_factory) -> None:
    session = await _session(uow_factory)
    async with uow_factory() as uow:
        assert [s.id for s in await uow.live.unfiled(T0 + timedelta(hours=3))] == [session.id]
        assert await uow.live.claim_filing(session.id, T0)
        await uow.commit()
    async with uow_factory() as uow:
        assert not await uow.live.claim_filing(session.id, T0)
        assert await uow.live.unfiled(T0 + timedelta(hours=3)) == []


async def test_ticket_followers(uow_factory) -> None:
    async with uow_factory() as uow:
        await uow.live.add_followers(41, ["oB", "oC"])
        await uow.live.add_followers(41, ["oC", "oD"])  # oC again: no second row
        await uow.live.add_followers(7, ["oC"])
        await uow.commit()
    async with uow_factory() as uow:
        await uow.live.add_followers(41, ["oE"])  # not committed: gone
    async with uow_factory() as uow:
        assert list(await uow.live.followers(41)) == ["oB", "oC", "oD"]
        assert list(await uow.live.followers(8)) == []
        assert list(await uow.live.followed_by("oC")) == [7, 41]
        assert list(await uow.live.followed_by("oA")) == []
