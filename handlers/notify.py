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
from collections.abc import Callable, Sequence
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
from bot.core.outbound import OutboxMessage, OutboxStatus, unbound_deputy_code, unbound_recipient
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


def field_time(at: datetime) -> str:
    """A time4/time5 template field: 2026年12月1日 10:00."""
    return f"{at.year}年{at.month}月{at.day}日 {at:%H:%M}"


def status_message(texts: Texts, ticket: Ticket, text: str, status_key: str, at: datetime) -> OutboxMessage:
    """The citizen's push about their ticket: `text` in the window, else the status template."""
    return OutboxMessage(
        recipient_openid=ticket.citizen_openid,
        text=text,
        template_key=STATUS,
        template_data=fit_all({
            "character_string1": f"#{ticket.number}",
            "thing2": texts.get(f"notify_status_{status_key}"),
            "thing3": ticket.summary,
            "time4": field_time(at),
        }),
        created_at=at,
        purpose=Purpose.STATUS,
    )


# --- to the citizen ------------------------------------------------------------------------------
def citizen_assigned(texts: Texts, ticket: Ticket, deputy: Deputy, at: datetime) -> OutboxMessage:
    text = texts.get("notify_citizen_assigned", number=ticket.number, deputy=deputy.name)
    return status_message(texts, ticket, text, "assigned", at)


def citizen_accepted(texts: Texts, ticket: Ticket, deputy: Deputy, at: datetime) -> OutboxMessage:
    text = texts.get("notify_citizen_accepted", number=ticket.number, deputy=deputy.name)
    return status_message(texts, ticket, text, "accepted", at)


def citizen_replied(texts: Texts, ticket: Ticket, deputy: Deputy, reply: str, at: datetime) -> OutboxMessage:
    text = texts.get("notify_citizen_replied", number=ticket.number, deputy=deputy.name, text=reply)
    return status_message(texts, ticket, text, "replied", at)


def citizen_resolved(texts: Texts, ticket: Ticket, result: str, at: datetime) -> OutboxMessage:
    text = texts.get("notify_citizen_resolved", number=ticket.number, result=result)
    return status_message(texts, ticket, text, "resolved", at)


def citizen_transferred(texts: Texts, ticket: Ticket, deputy: Deputy, at: datetime) -> OutboxMessage:
    text = texts.get("notify_citizen_transferred", number=ticket.number, deputy=deputy.name)
    return status_message(texts, ticket, text, "transferred", at)


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
        "time5": field_time(at),
    }
    if contact and ticket.share_contact and ticket.phone:
        data["phone_number6"] = ticket.phone
    return fit_all(data)


def _deputy_recipient(deputy: Deputy) -> str:
    """The deputy's openid; for one who bound no WeChat a marker: the push is filed as undeliverable
    at once (store_messages), so staff follow up and the next on-duty deputy hears of it."""
    return deputy.openid or unbound_recipient(deputy.code)


def _with_link(texts: Texts, text: str, link: str) -> str:
    """The notice and the link to the whole ticket (its read-only page, for this deputy only)."""
    return text + texts.get("notify_link_line", url=link) if link else text


def deputy_assignment(texts: Texts, ticket: Ticket, deputy: Deputy, at: datetime, link: str = "") -> OutboxMessage:
    """The new-ticket notice (also in 我的工单, and once bound)."""
    return OutboxMessage(
        recipient_openid=_deputy_recipient(deputy),
        text=_with_link(texts, texts.get("notify_deputy_assignment", **ticket_body(texts, ticket)), link),
        template_key=ASSIGNMENT,
        template_data=_assignment_data(ticket, at),
        created_at=at,
        purpose=Purpose.ASSIGNMENT,
    )


def deputy_transfer_in(
    texts: Texts, ticket: Ticket, to_deputy: Deputy, from_deputy: Deputy, at: datetime, link: str = ""
) -> OutboxMessage:
    text = texts.get("notify_deputy_transfer_in", from_deputy=from_deputy.name, **ticket_body(texts, ticket))
    return OutboxMessage(
        recipient_openid=_deputy_recipient(to_deputy),
        text=_with_link(texts, text, link),
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
async def store_messages(uow: UnitOfWork, *messages: OutboxMessage | None) -> None:
    """Add the pushes to the outbox in this transaction (None, or a visitor's empty openid: skipped)."""
    for message in messages:
        if message is None or not message.recipient_openid:  # "": a visitor's ticket, no WeChat
            continue
        stored = await uow.outbox.add(message)
        if unbound_deputy_code(stored.recipient_openid):  # no way reaches them: staff are told now
            assert stored.created_at is not None, "stored messages have their time"
            stored.status = OutboxStatus.FAILED
            stored.unreachable("not bound", stored.created_at)
            await uow.outbox.save(stored)


async def ticket_of(uow: UnitOfWork, number: int) -> Ticket:
    ticket = await uow.tickets.get(number)
    if ticket is None:
        raise LookupError(f"no ticket #{number}")
    return ticket


async def deputy_of(uow: UnitOfWork, code: str | None) -> Deputy | None:
    return await uow.deputies.get(code) if code else None


async def _required_deputy(uow: UnitOfWork, code: str) -> Deputy:
    deputy = await deputy_of(uow, code)
    if deputy is None:
        raise LookupError(f"no deputy {code!r}")
    return deputy


# the link to a ticket's page for a deputy: (number, deputy code, at) -> URL (handlers/ticket_links.py)
LinkMaker = Callable[[int, str, datetime], str]


def no_link(number: int, deputy_code: str, at: datetime) -> str:
    return ""


async def on_ticket_filed(texts: Texts, event: TicketFiled, uow: UnitOfWork, link: LinkMaker = no_link) -> None:
    """The deputy who took it, or the station's staff when it waits for the next shift. The
    citizen is told in the reply to their 是 (citizens.filed_text): a push would repeat it."""
    ticket = await ticket_of(uow, event.number)
    if event.deputy_code is None:
        label = station_label(texts, await uow.stations.get(event.station_code), event.station_code)
        staff = await _staff_of(uow, event.station_code)
        await store_messages(uow, *(staff_queue_notice(texts, ticket, label, s, event.at) for s in staff))
        return
    deputy = await _required_deputy(uow, event.deputy_code)
    if not deputy.openid:
        log.warning("ticket #%d assigned to %s who has not bound WeChat", ticket.number, deputy.code)
    await store_messages(uow, deputy_assignment(texts, ticket, deputy, event.at, link(ticket.number, deputy.code, event.at)))


async def on_ticket_assigned(texts: Texts, event: TicketAssigned, uow: UnitOfWork, link: LinkMaker = no_link) -> None:
    ticket, deputy = await ticket_of(uow, event.number), await _required_deputy(uow, event.deputy_code)
    await store_messages(uow, citizen_assigned(texts, ticket, deputy, event.at),
                 deputy_assignment(texts, ticket, deputy, event.at, link(ticket.number, deputy.code, event.at)))


async def on_ticket_accepted(texts: Texts, event: TicketAccepted, uow: UnitOfWork) -> None:
    if event.by_reply:
        return  # the reply is the citizen's news
    ticket, deputy = await ticket_of(uow, event.number), await _required_deputy(uow, event.deputy_code)
    await store_messages(uow, citizen_accepted(texts, ticket, deputy, event.at))


async def on_ticket_replied(texts: Texts, event: TicketReplied, uow: UnitOfWork) -> None:
    ticket, deputy = await ticket_of(uow, event.number), await _required_deputy(uow, event.deputy_code)
    await store_messages(uow, citizen_replied(texts, ticket, deputy, event.text, event.at))


async def on_ticket_resolved(texts: Texts, event: TicketResolved, uow: UnitOfWork) -> None:
    await store_messages(uow, citizen_resolved(texts, await ticket_of(uow, event.number), event.result, event.at))


async def on_ticket_transferred(texts: Texts, event: TicketTransferred, uow: UnitOfWork,
                                link: LinkMaker = no_link) -> None:
    ticket = await ticket_of(uow, event.number)
    target = await _required_deputy(uow, event.to_deputy)
    source = await _required_deputy(uow, event.from_deputy)
    await store_messages(uow, deputy_transfer_in(texts, ticket, target, source, event.at, link(ticket.number, target.code, event.at)),
                 citizen_transferred(texts, ticket, target, event.at))


async def on_citizen_noted(texts: Texts, event: CitizenNoted, uow: UnitOfWork) -> None:
    """Passed on to the ticket's deputy, when it has one (one who bound no WeChat: filed as undeliverable)."""
    deputy = await deputy_of(uow, (await ticket_of(uow, event.number)).deputy_code)
    if deputy:
        await store_messages(uow, OutboxMessage(
            recipient_openid=_deputy_recipient(deputy),
            text=texts.get("citizen_note_to_deputy", number=event.number, text=event.text),
            created_at=event.at,
            purpose=Purpose.NOTE,
        ))


async def on_ticket_rated(texts: Texts, event: TicketRated, uow: UnitOfWork) -> None:
    ticket = await ticket_of(uow, event.number)
    deputy = await deputy_of(uow, ticket.deputy_code)
    if deputy and deputy.openid:
        await store_messages(uow, OutboxMessage(
            recipient_openid=deputy.openid,
            text=texts.get("citizen_rate_to_deputy", number=ticket.number, summary=shorten(ticket.summary),
                           score=event.score, comment=event.comment).strip(),
            created_at=event.at,
        ))


def register(bus: MessageBus, texts: Texts, link: LinkMaker = no_link) -> None:
    """Who is told what about a ticket: the one list of push handlers. `link`: the deputy's
    notices carry a link to the ticket's page."""
    linked = (on_ticket_filed, on_ticket_assigned, on_ticket_transferred)
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
        bus.subscribe(event_type, partial(handler, texts, link=link) if handler in linked else partial(handler, texts))
