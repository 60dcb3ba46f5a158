"""The pushed messages about tickets, built in one place from config/texts/notify.yaml.

Each builder returns an OutboxMessage (not yet stored) with
- `text`: the customer-service message, used inside WeChat's 48 h window;
- `template_key` + `template_data`: the template message used outside it.

Template data uses the classic field names, so the configured templates need them:
- 'status' (ZTC_TEMPLATE_ID_STATUS, to a citizen): first, keyword1 = ticket number, keyword2 = status,
  keyword3 = summary, remark;
- 'assignment' (ZTC_TEMPLATE_ID_ASSIGNMENT, to a deputy): first, keyword1 = ticket number,
  keyword2 = category, keyword3 = place, keyword4 = summary, remark.
The phone number appears (text and template) only when the citizen agreed to share it.
"""
from __future__ import annotations

from datetime import datetime

from bot.domain import Deputy, OutboxMessage, Ticket
from bot.texts import Texts

STATUS = "status"
ASSIGNMENT = "assignment"

# Template fields are shown on one line each; WeChat cuts or rejects long values.
_TEMPLATE_VALUE_MAX = 20
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


def shorten(text: str, limit: int = _TEMPLATE_VALUE_MAX) -> str:
    """The text on one line (runs of white space become one space), at most `limit` characters,
    the last of them "…" when something was cut. The one shortening rule of all chat texts."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _status_message(texts: Texts, ticket: Ticket, text: str, status_key: str, at: datetime) -> OutboxMessage:
    return OutboxMessage(
        recipient_openid=ticket.citizen_openid,
        text=text,
        template_key=STATUS,
        template_data={
            "first": texts.get("notify_tpl_status_first"),
            "keyword1": f"#{ticket.number}",
            "keyword2": texts.get(f"notify_status_{status_key}"),
            "keyword3": shorten(ticket.summary),
            "remark": texts.get("notify_tpl_remark"),
        },
        created_at=at,
    )


# --- to the citizen ------------------------------------------------------------------------------
def citizen_filed(
    texts: Texts, ticket: Ticket, station: str, deputy: Deputy | None, at: datetime
) -> OutboxMessage:
    """已受理: with the deputy's name when someone took it at once, else the queue notice."""
    if deputy is not None:
        text = texts.get("notify_citizen_filed_assigned", number=ticket.number, station=station, deputy=deputy.name)
        return _status_message(texts, ticket, text, "assigned", at)
    text = texts.get("notify_citizen_filed_queued", number=ticket.number, station=station)
    return _status_message(texts, ticket, text, "queued", at)


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


def _assignment_data(texts: Texts, ticket: Ticket, first_key: str, *, contact: bool = True) -> dict[str, str]:
    """The 'assignment' template's fields; the phone (when shared) only with `contact`."""
    remark = texts.get("notify_tpl_remark")
    if contact and ticket.share_contact and ticket.phone:
        remark = texts.get("notify_contact_line", phone=ticket.phone).strip() + " " + remark
    return {
        "first": texts.get(first_key),
        "keyword1": f"#{ticket.number}",
        "keyword2": shorten(ticket.category),
        "keyword3": shorten(ticket.place),
        "keyword4": shorten(ticket.summary),
        "remark": remark,
    }


def deputy_assignment(texts: Texts, ticket: Ticket, deputy: Deputy, at: datetime) -> OutboxMessage | None:
    """The new-ticket notice; None when the deputy has not bound WeChat yet (they see it in 我的工单)."""
    if not deputy.openid:
        return None
    return OutboxMessage(
        recipient_openid=deputy.openid,
        text=texts.get("notify_deputy_assignment", **ticket_body(texts, ticket)),
        template_key=ASSIGNMENT,
        template_data=_assignment_data(texts, ticket, "notify_tpl_assignment_first"),
        created_at=at,
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
        template_data=_assignment_data(texts, ticket, "notify_tpl_transfer_first"),
        created_at=at,
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
        template_data=_assignment_data(texts, ticket, "notify_tpl_staff_first", contact=False),
        created_at=at,
    )
