"""The other askers of a merged live question follow its ticket (handlers/live.py files it for the
first asker and records the rest in live_ticket_followers). They learn what its filer learns, by
reacting to the ticket's own events beside handlers/notify.py (the citizen's pushes are not
touched): handed to a deputy, accepted, the deputy's reply, resolved, transferred. Their texts say
it is the question they asked too, and do not invite them to answer the deputy or rate: that stays
with the filer. Nothing of the filer (their notes, rating, contact) reaches a follower: these
pushes carry only the ticket number, the deputy's name and the deputy's words; 我的诉求 and
「#编号」 show followers the ticket without the filer's own entries (handlers/citizens.py)."""
from __future__ import annotations

import dataclasses
from functools import partial

from bot.core.events import TicketAccepted, TicketAssigned, TicketReplied, TicketResolved, TicketTransferred
from bot.core.ports import UnitOfWork
from bot.texts import Texts
from handlers.bus import MessageBus
from handlers.notify import deputy_of, status_message, store_messages, ticket_of

TicketEvent = TicketAssigned | TicketAccepted | TicketReplied | TicketResolved | TicketTransferred
STATUS_OF = {TicketAssigned: "assigned", TicketAccepted: "accepted", TicketReplied: "replied",
             TicketResolved: "resolved", TicketTransferred: "transferred"}


async def tell_followers(texts: Texts, event: TicketEvent, uow: UnitOfWork) -> None:
    if isinstance(event, TicketAccepted) and event.by_reply:
        return  # the reply itself tells them
    followers = await uow.live.followers(event.number)
    if not followers:
        return
    ticket = await ticket_of(uow, event.number)
    code = event.to_deputy if isinstance(event, TicketTransferred) else event.deputy_code
    deputy = await deputy_of(uow, code)
    key = STATUS_OF[type(event)]
    text = texts.get(f"live_follow_{key}", number=ticket.number, deputy=deputy.name if deputy else "",
                     text=getattr(event, "text", ""), result=getattr(event, "result", ""))
    message = status_message(texts, ticket, text, key, event.at)
    await store_messages(uow, *(dataclasses.replace(message, recipient_openid=openid, events=[])
                                for openid in followers if openid != ticket.citizen_openid))


def register(bus: MessageBus, texts: Texts) -> None:
    for event_type in STATUS_OF:
        bus.subscribe(event_type, partial(tell_followers, texts))
