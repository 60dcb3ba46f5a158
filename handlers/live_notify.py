"""Who is told what about a live session, as event handlers (subscribed in `register`):
- an answer goes to every asker of the question (merged questions' askers included) through the
  outbox, the way delivery chooses for every push (handlers/channels.reach): a customer-service
  message while their window is open (they wrote minutes ago), else the template message
  ZTC_TEMPLATE_ID_LIVE or the 订阅通知 ZTC_SUBSCRIBE_ID_LIVE the asker accepted, else held until
  they write. Once the window's 5 messages are used up (or it closed) and nothing else reaches
  them, the live messages held meanwhile are digests (Purpose.DIGEST): joined into one message when
  they next write (handlers/held.py), not a queue that uses up the new window. Template/订阅通知
  fields: thing1 = the session's title, thing2 = the question, thing3 = what happened (the
  answer…), time4 = when;
- a hidden question: its askers are told politely it will be handled after the stream;
- the follow-up filing: each asker gets their ticket numbers in one message;
- after each commit, every new or changed question goes to the host screens (the LiveFeed)."""
from __future__ import annotations

import json
import logging
from datetime import datetime
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
from bot.core.reach import Purpose
from bot.core.wechat_fields import fit_all
from bot.texts import Texts
from handlers import live_followers
from handlers.bus import MessageBus
from handlers.notify import field_time, shorten

log = logging.getLogger(__name__)

LIVE = "live"  # template key of live pushes: ZTC_TEMPLATE_ID_LIVE / ZTC_SUBSCRIBE_ID_LIVE outside the window
QUESTION_SHOWN = 40  # characters of the question quoted in the answer


def live_data(title: str, question: str, what: str, at: datetime) -> dict[str, str]:
    """The template / 订阅通知 fields of a live push (each cut to WeChat's 20 characters)."""
    return fit_all({"thing1": title, "thing2": question, "thing3": what, "time4": field_time(at)})


async def _push(uow: UnitOfWork, openid: str, text: str, data: dict[str, str], at: datetime) -> None:
    """A digest: held ones are joined into one message when released (handlers/held.py)."""
    await uow.outbox.add(OutboxMessage(recipient_openid=openid, text=text, template_key=LIVE,
                                       template_data=data, created_at=at, purpose=Purpose.DIGEST))


async def on_answered(texts: Texts, event: LiveQuestionAnswered, uow: UnitOfWork) -> None:
    session = await uow.live.get_session(event.session_id)
    question = await uow.live.get_question(event.question_id)
    title = session.title if session else ""
    quoted = shorten(question.text, QUESTION_SHOWN) if question else ""
    data = live_data(title, quoted, texts.get("live_field_answer", answer=event.text), event.at)
    for openid in event.askers:
        await _push(uow, openid, texts.get("live_answer_push", title=title, question=quoted, answer=event.text),
                    data, event.at)


async def on_hidden(texts: Texts, event: LiveQuestionHidden, uow: UnitOfWork) -> None:
    session = await uow.live.get_session(event.session_id)
    question = await uow.live.get_question(event.question_id)
    quoted = shorten(question.text, QUESTION_SHOWN) if question else ""
    data = live_data(session.title if session else "", quoted, texts.get("live_field_hidden"), event.at)
    for openid in event.askers:
        await _push(uow, openid, texts.get("live_hidden_push", question=quoted), data, event.at)


async def on_follow_up_filed(texts: Texts, event: LiveFollowUpFiled, uow: UnitOfWork) -> None:
    for openid, numbers in event.numbers:
        listed = "、".join(f"#{n}" for n in numbers)
        text = texts.get("live_tickets_push", title=event.title, count=len(numbers), numbers=listed, first=numbers[0])
        await _push(uow, openid, text, live_data(event.title, texts.get("live_field_tickets_subject", count=len(numbers)),
                                                 texts.get("live_field_tickets", numbers=listed), event.at), event.at)


async def publish_change(feed: LiveFeed, event: LiveQuestionChanged) -> None:
    await feed.publish(event.session_id, json.dumps({"type": "question", **event.view}, ensure_ascii=False))


async def publish_end(feed: LiveFeed, event: LiveSessionEnded) -> None:
    await feed.publish(event.session_id, json.dumps({"type": "ended", "session_id": event.session_id}))


def register(bus: MessageBus, texts: Texts, feed: LiveFeed) -> None:
    live_followers.register(bus, texts)
    bus.subscribe(LiveQuestionAnswered, partial(on_answered, texts))
    bus.subscribe(LiveQuestionHidden, partial(on_hidden, texts))
    bus.subscribe(LiveFollowUpFiled, partial(on_follow_up_filed, texts))
    bus.subscribe_after_commit(LiveQuestionChanged, partial(publish_change, feed))
    bus.subscribe_after_commit(LiveSessionEnded, partial(publish_end, feed))
