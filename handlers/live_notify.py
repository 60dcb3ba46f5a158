"""Who is told what about a live session, as event handlers (subscribed in `register`):
- an answer goes to every asker of the question (merged questions' askers included), as a
  customer-service message through the outbox (their window is open: they wrote minutes ago);
  when WeChat's window quota held earlier answers back, the new one joins the held message, so
  the citizen gets one message, not a queue beyond the 5-message window;
- a hidden question: its askers are told politely it will be handled after the stream;
- the follow-up filing: each asker gets their ticket numbers in one message;
- after each commit, every new or changed question goes to the host screens (the LiveFeed)."""
from __future__ import annotations

import json
import logging
from functools import partial

from bot.core.events import (
    LiveFollowUpFiled,
    LiveQuestionAnswered,
    LiveQuestionChanged,
    LiveQuestionHidden,
    LiveSessionEnded,
)
from bot.core.outbound import OutboxMessage
from bot.core.ports import LiveFeed, UnitOfWork
from bot.texts import Texts
from handlers.bus import MessageBus
from handlers.notify import RELAY_MAX_BYTES, shorten

log = logging.getLogger(__name__)

LIVE = "live"  # template key of live pushes: no template is configured for it, so outside the window they are held
QUESTION_SHOWN = 40  # characters of the question quoted in the answer


async def _push(uow: UnitOfWork, openid: str, text: str, at: object) -> None:
    """Add the message, or join it to a held live message of the same citizen when it fits."""
    for held in reversed(list(await uow.outbox.held_for(openid))):
        joined = held.text + "\n\n" + text
        if held.template_key == LIVE and len(joined.encode("utf-8")) <= RELAY_MAX_BYTES:
            held.text = joined
            await uow.outbox.save(held)
            return
        break
    await uow.outbox.add(OutboxMessage(recipient_openid=openid, text=text, template_key=LIVE,
                                       created_at=at))  # type: ignore[arg-type]


async def on_answered(texts: Texts, event: LiveQuestionAnswered, uow: UnitOfWork) -> None:
    session = await uow.live.get_session(event.session_id)
    question = await uow.live.get_question(event.question_id)
    title = session.title if session else ""
    quoted = shorten(question.text, QUESTION_SHOWN) if question else ""
    for openid in event.askers:
        await _push(uow, openid, texts.get("live_answer_push", title=title, question=quoted, answer=event.text),
                    event.at)


async def on_hidden(texts: Texts, event: LiveQuestionHidden, uow: UnitOfWork) -> None:
    question = await uow.live.get_question(event.question_id)
    quoted = shorten(question.text, QUESTION_SHOWN) if question else ""
    for openid in event.askers:
        await _push(uow, openid, texts.get("live_hidden_push", question=quoted), event.at)


async def on_follow_up_filed(texts: Texts, event: LiveFollowUpFiled, uow: UnitOfWork) -> None:
    for openid, numbers in event.numbers:
        listed = "、".join(f"#{n}" for n in numbers)
        await uow.outbox.add(OutboxMessage(
            recipient_openid=openid, created_at=event.at, template_key=LIVE,
            text=texts.get("live_tickets_push", title=event.title, count=len(numbers), numbers=listed,
                           first=numbers[0])))


async def publish_change(feed: LiveFeed, event: LiveQuestionChanged) -> None:
    await feed.publish(event.session_id, json.dumps({"type": "question", **event.view}, ensure_ascii=False))


async def publish_end(feed: LiveFeed, event: LiveSessionEnded) -> None:
    await feed.publish(event.session_id, json.dumps({"type": "ended", "session_id": event.session_id}))


def register(bus: MessageBus, texts: Texts, feed: LiveFeed) -> None:
    bus.subscribe(LiveQuestionAnswered, partial(on_answered, texts))
    bus.subscribe(LiveQuestionHidden, partial(on_hidden, texts))
    bus.subscribe(LiveFollowUpFiled, partial(on_follow_up_filed, texts))
    bus.subscribe_after_commit(LiveQuestionChanged, partial(publish_change, feed))
    bus.subscribe_after_commit(LiveSessionEnded, partial(publish_end, feed))
