"""The pushes that follow staff actions (handlers/staff_actions.py), beside handlers/notify.py and
built the same way: in the transaction of the change, customer-service text inside WeChat's 48 h
window, the 'status' template outside it. A visitor's ticket (no WeChat) pushes nobody but deputies."""
from __future__ import annotations

from functools import partial

from bot.core.events import StationMessaged, TicketAssigned, TicketClosedAsDuplicate
from bot.core.outbound import OutboxMessage
from bot.core.ports import UnitOfWork
from bot.texts import Texts
from handlers.bus import MessageBus
from handlers.notify import deputy_of, shorten, station_label, status_message, store_messages, ticket_of


async def on_station_messaged(texts: Texts, event: StationMessaged, uow: UnitOfWork) -> None:
    ticket = await ticket_of(uow, event.number)
    station = station_label(texts, await uow.stations.get(ticket.station_code), ticket.station_code)
    text = texts.get("notify_citizen_station_message", number=ticket.number, station=station, text=event.text)
    await store_messages(uow, status_message(texts, ticket, text, "station_message", event.at))


async def on_closed_as_duplicate(texts: Texts, event: TicketClosedAsDuplicate, uow: UnitOfWork) -> None:
    """The citizen learns which number handles their matter; the deputy that nothing is left to do."""
    ticket = await ticket_of(uow, event.number)
    text = texts.get("notify_citizen_duplicate", number=ticket.number, original=event.original)
    deputy = await deputy_of(uow, event.deputy_code)
    await store_messages(uow, status_message(texts, ticket, text, "duplicate", event.at),
                 _deputy_notice(texts, deputy.openid if deputy else None, event.at, "notify_deputy_duplicate",
                                number=ticket.number, original=event.original, summary=shorten(ticket.summary)))


async def on_reassigned(texts: Texts, event: TicketAssigned, uow: UnitOfWork) -> None:
    """The deputy a ticket was taken from (the new one hears from notify.on_ticket_assigned)."""
    if not event.previous_deputy or event.previous_deputy == event.deputy_code:
        return
    ticket = await ticket_of(uow, event.number)
    previous, now = await deputy_of(uow, event.previous_deputy), await deputy_of(uow, event.deputy_code)
    await store_messages(uow, _deputy_notice(texts, previous.openid if previous else None, event.at,
                                     "notify_deputy_taken_away", number=ticket.number,
                                     summary=shorten(ticket.summary), deputy=now.name if now else event.deputy_code))


def _deputy_notice(texts: Texts, openid: str | None, at: object, key: str, **params: object) -> OutboxMessage | None:
    if not openid:
        return None
    return OutboxMessage(recipient_openid=openid, text=texts.get(key, **params), created_at=at)  # type: ignore[arg-type]


def register(bus: MessageBus, texts: Texts) -> None:
    bus.subscribe(StationMessaged, partial(on_station_messaged, texts))
    bus.subscribe(TicketClosedAsDuplicate, partial(on_closed_as_duplicate, texts))
    bus.subscribe(TicketAssigned, partial(on_reassigned, texts))
