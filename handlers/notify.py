"""The pushed messages about tickets: built in one place from config/texts/notify.yaml, and
stored by the event handlers at the end of this module (subscribed in `register`).

Each builder returns an OutboxMessage (not yet stored) with
- `text`: the customer-service message, used inside WeChat's 48 h window;
- `template_key` + `template_data`: the template message used outside it.

Template data follows WeChat's rules since 2023 (bot/core/wechat_fields.py): typed fields, each
at most 20 characters, no `first`/`remark` (no longer shown). The same fields serve the template
message (ZTC_TEMPLATE_ID_*) and the 订阅通知 (ZTC_SUBSCRIBE_ID_*), so both must be set up with them:
- 'status' (to a citizen): character_string1 = ticket number, thing2 = status, thing3 = summary,
  time4 = when;
- 'assignment' (to a deputy): character_string1 = ticket number, thing2 = category, thing3 = place,
  thing4 = summary, time5 = when, phone_number6 = the citizen's phone (only when shared).
The phone number appears (text and template) only when the citizen agreed to share it.
Each message carries its `purpose` (bot.core.reach.Purpose): delivery drops one that no longer
applies when its turn comes (the ticket was transferred away, closed, already accepted).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from functools import partial

from bot.core.events import (
    CitizenNoted,
    TicketAccepted,
    TicketAssigned,
    TicketFiled,
    TicketRated,
    TicketReplied,
    TicketResolved,
    TicketTransferred,
)
from bot.core.outbound import OutboxMessage
from bot.core.people import DISTRICT_QUEUE, Deputy, Station
from bot.core.ports import UnitOfWork
from bot.core.reach import Purpose
from bot.core.tickets import Ticket
from bot.core.wechat_fields import fit_all
from bot.texts import Texts
from handlers.bus import MessageBus

log = logging.getLogger(__name__)

STATUS = "status"
ASSIGNMENT = "assignment"

# One line of a list or a template field: WeChat cuts or rejects long template values, and a
# list (我的诉求, 我的工单) stays one chat bubble.
LINE_MAX = 20
# a ticket's own heading (its timeline) shows more of the summary
HEADING_SUMMARY_MAX = 60
# WeChat takes at most 2048 bytes in a passive reply or a customer-service text (~680 Chinese
# characters): a citizen's details (up to 2000 characters) are cut to this in what deputies read.
DETAILS_MAX = 200
# Free text passed on between a citizen and a deputy (a reply, a result, a note) goes out whole or
# not at all: longer than this (UTF-8 bytes, ~600 Chinese characters, leaving room for our wording
# around it) and the sender is asked to split it, so nothing is cut or fails at WeChat later.
RELAY_MAX_BYTES = 1800
RELAY_MAX_CHARS = RELAY_MAX_BYTES // 3  # what the sender is told, in characters


def relay_refusal(texts: Texts, number: int, text: str) -> str | None:
    """The answer for a relayed text too long for one WeChat message, else None."""
    if len(text.encode("utf-8")) <= RELAY_MAX_BYTES:
        return None
    return texts.get("relay_too_long", number=number, count=len(text), limit=RELAY_MAX_CHARS)


def shorten(text: str, limit: int = LINE_MAX) -> str:
    """The text on one line (runs of white space become one space), at most `limit` characters,
    the last of them "…" when something was cut. The one shortening rule of all chat texts."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(at: datetime) -> str:
    return f"{at.year}年{at.month}月{at.day}日 {at:%H:%M}"


def _status_message(texts: Texts, ticket: Ticket, text: str, status_key: str, at: datetime) -> OutboxMessage:
    return OutboxMessage(
        recipient_openid=ticket.citizen_openid,
        text=text,
        template_key=STATUS,
        template_data=fit_all({
            "character_string1": f"#{ticket.number}",
            "thing2": texts.get(f"notify_status_{status_key}"),
            "thing3": ticket.summary,
            "time4": _when(at),
        }),
        created_at=at,
        purpose=Purpose.STATUS,
    )


# --- to the citizen ------------------------------------------------------------------------------
def citizen_assigned(texts: Texts, ticket: Ticket, deputy: Deputy, at: datetime) -> OutboxMessage:
    text = texts.get("notify_citizen_assigned", number=ticket.number, deputy=deputy.name)
    return _status_message(texts, ticket, text, "assigned", at)


def citizen_accepted(texts: Texts, ticket: Ticket, deputy: Deputy, at: datetime) -> OutboxMessage:
    text = texts.get("notify_citizen_accepted", number=ticket.number, deputy=deputy.name)
    return _status_message(texts, ticket, text, "accepted", at)


def citizen_replied(texts: Texts, ticket: Ticket, deputy: Deputy, reply: str, at: datetime) -> OutboxMessage:
    text = texts.get("notify_citizen_replied", number=ticket.number, deputy=deputy.name, text=reply)
    return _status_message(texts, ticket, text, "replied", at)


def citizen_resolved(texts: Texts, ticket: Ticket, result: str, at: datetime) -> OutboxMessage:
    text = texts.get("notify_citizen_resolved", number=ticket.number, result=result)
    return _status_message(texts, ticket, text, "resolved", at)


def citizen_transferred(texts: Texts, ticket: Ticket, deputy: Deputy, at: datetime) -> OutboxMessage:
    text = texts.get("notify_citizen_transferred", number=ticket.number, deputy=deputy.name)
    return _status_message(texts, ticket, text, "transferred", at)


# --- to deputies -------------------------------------------------------------------------------
def ticket_body(texts: Texts, ticket: Ticket) -> dict[str, object]:
    details = texts.get("notify_details_line", details=shorten(ticket.details, DETAILS_MAX)) if ticket.details else ""
    if ticket.share_contact and ticket.phone:
        contact = texts.get("notify_contact_line", phone=ticket.phone)
    else:
        contact = texts.get("notify_contact_none", number=ticket.number)
    return {
        "number": ticket.number,
        "category": ticket.category,
        "place": ticket.place,
        "summary": ticket.summary,
        "details": details,
        "contact": contact,
    }


def _assignment_data(ticket: Ticket, at: datetime, *, contact: bool = True) -> dict[str, str]:
    """The 'assignment' template's fields; the phone (when shared) only with `contact`."""
    data = {
        "character_string1": f"#{ticket.number}",
        "thing2": ticket.category,
        "thing3": ticket.place,
        "thing4": ticket.summary,
        "time5": _when(at),
    }
    if contact and ticket.share_contact and ticket.phone:
        data["phone_number6"] = ticket.phone
    return fit_all(data)


def deputy_assignment(texts: Texts, ticket: Ticket, deputy: Deputy, at: datetime) -> OutboxMessage | None:
    """The new-ticket notice; None when the deputy has not bound WeChat yet (they see it in 我的工单)."""
    if not deputy.openid:
        return None
    return OutboxMessage(
        recipient_openid=deputy.openid,
        text=texts.get("notify_deputy_assignment", **ticket_body(texts, ticket)),
        template_key=ASSIGNMENT,
        template_data=_assignment_data(ticket, at),
        created_at=at,
        purpose=Purpose.ASSIGNMENT,
    )


def deputy_transfer_in(
    texts: Texts, ticket: Ticket, to_deputy: Deputy, from_deputy: Deputy, at: datetime
) -> OutboxMessage | None:
    if not to_deputy.openid:
        return None
    return OutboxMessage(
        recipient_openid=to_deputy.openid,
        text=texts.get("notify_deputy_transfer_in", from_deputy=from_deputy.name, **ticket_body(texts, ticket)),
        template_key=ASSIGNMENT,
        template_data=_assignment_data(ticket, at),
        created_at=at,
        purpose=Purpose.TRANSFER_IN,
    )


def staff_queue_notice(texts: Texts, ticket: Ticket, station: str, staff: Deputy, at: datetime) -> OutboxMessage | None:
    """Tells a station's bound deputy that a ticket waits for the next shift. No phone here:
    the ticket is not theirs (yet)."""
    if not staff.openid:
        return None
    return OutboxMessage(
        recipient_openid=staff.openid,
        text=texts.get(
            "notify_staff_queue",
            number=ticket.number,
            station=station,
            category=ticket.category,
            place=ticket.place,
            summary=ticket.summary,
        ),
        template_key=ASSIGNMENT,
        template_data=_assignment_data(ticket, at, contact=False),
        created_at=at,
        purpose=Purpose.QUEUE,
    )


def station_label(texts: Texts, station: Station | None, code: str) -> str:
    if station is not None:
        return station.name
    return texts.get("notify_district_name") if code == DISTRICT_QUEUE else code


async def _staff_of(uow: UnitOfWork, station_code: str) -> Sequence[Deputy]:
    """The station's bound deputies (the district queue has none of its own)."""
    if station_code == DISTRICT_QUEUE:
        return []
    return [d for d in await uow.deputies.list(station_code) if d.openid]


# --- event handlers: each stores its pushes in the transaction of the change ---------------------
async def _store(uow: UnitOfWork, *messages: OutboxMessage | None) -> None:
    for message in messages:
        if message is not None and message.recipient_openid:  # "": a visitor's ticket, no WeChat
            await uow.outbox.add(message)


async def _ticket(uow: UnitOfWork, number: int) -> Ticket:
    ticket = await uow.tickets.get(number)
    if ticket is None:
        raise LookupError(f"no ticket #{number}")
    return ticket


async def _deputy(uow: UnitOfWork, code: str | None) -> Deputy | None:
    return await uow.deputies.get(code) if code else None


async def _required_deputy(uow: UnitOfWork, code: str) -> Deputy:
    deputy = await _deputy(uow, code)
    if deputy is None:
        raise LookupError(f"no deputy {code!r}")
    return deputy


async def on_ticket_filed(texts: Texts, event: TicketFiled, uow: UnitOfWork) -> None:
    """The deputy who took it, or the station's staff when it waits for the next shift. The
    citizen is told in the reply to their 是 (citizens.filed_text): a push would repeat it."""
    ticket = await _ticket(uow, event.number)
    if event.deputy_code is None:
        label = station_label(texts, await uow.stations.get(event.station_code), event.station_code)
        staff = await _staff_of(uow, event.station_code)
        await _store(uow, *(staff_queue_notice(texts, ticket, label, s, event.at) for s in staff))
        return
    deputy = await _required_deputy(uow, event.deputy_code)
    if not deputy.openid:
        log.warning("ticket #%d assigned to %s who has not bound WeChat", ticket.number, deputy.code)
    await _store(uow, deputy_assignment(texts, ticket, deputy, event.at))


async def on_ticket_assigned(texts: Texts, event: TicketAssigned, uow: UnitOfWork) -> None:
    ticket, deputy = await _ticket(uow, event.number), await _required_deputy(uow, event.deputy_code)
    await _store(uow, citizen_assigned(texts, ticket, deputy, event.at),
                 deputy_assignment(texts, ticket, deputy, event.at))


async def on_ticket_accepted(texts: Texts, event: TicketAccepted, uow: UnitOfWork) -> None:
    if event.by_reply:
        return  # the reply is the citizen's news
    ticket, deputy = await _ticket(uow, event.number), await _required_deputy(uow, event.deputy_code)
    await _store(uow, citizen_accepted(texts, ticket, deputy, event.at))


async def on_ticket_replied(texts: Texts, event: TicketReplied, uow: UnitOfWork) -> None:
    ticket, deputy = await _ticket(uow, event.number), await _required_deputy(uow, event.deputy_code)
    await _store(uow, citizen_replied(texts, ticket, deputy, event.text, event.at))


async def on_ticket_resolved(texts: Texts, event: TicketResolved, uow: UnitOfWork) -> None:
    await _store(uow, citizen_resolved(texts, await _ticket(uow, event.number), event.result, event.at))


async def on_ticket_transferred(texts: Texts, event: TicketTransferred, uow: UnitOfWork) -> None:
    ticket = await _ticket(uow, event.number)
    target = await _required_deputy(uow, event.to_deputy)
    source = await _required_deputy(uow, event.from_deputy)
    await _store(uow, deputy_transfer_in(texts, ticket, target, source, event.at),
                 citizen_transferred(texts, ticket, target, event.at))


async def on_citizen_noted(texts: Texts, event: CitizenNoted, uow: UnitOfWork) -> None:
    """Passed on to the ticket's deputy, when there is one who can be reached."""
    deputy = await _deputy(uow, (await _ticket(uow, event.number)).deputy_code)
    if deputy and deputy.openid:
        await _store(uow, OutboxMessage(
            recipient_openid=deputy.openid,
            text=texts.get("citizen_note_to_deputy", number=event.number, text=event.text),
            created_at=event.at,
            purpose=Purpose.NOTE,
        ))


async def on_ticket_rated(texts: Texts, event: TicketRated, uow: UnitOfWork) -> None:
    ticket = await _ticket(uow, event.number)
    deputy = await _deputy(uow, ticket.deputy_code)
    if deputy and deputy.openid:
        await _store(uow, OutboxMessage(
            recipient_openid=deputy.openid,
            text=texts.get("citizen_rate_to_deputy", number=ticket.number, summary=shorten(ticket.summary),
                           score=event.score, comment=event.comment).strip(),
            created_at=event.at,
        ))


def register(bus: MessageBus, texts: Texts) -> None:
    """Who is told what about a ticket: the one list of push handlers."""
    for event_type, handler in (
        (TicketFiled, on_ticket_filed),
        (TicketAssigned, on_ticket_assigned),
        (TicketAccepted, on_ticket_accepted),
        (TicketReplied, on_ticket_replied),
        (TicketResolved, on_ticket_resolved),
        (TicketTransferred, on_ticket_transferred),
        (CitizenNoted, on_citizen_noted),
        (TicketRated, on_ticket_rated),
    ):
        bus.subscribe(event_type, partial(handler, texts))
