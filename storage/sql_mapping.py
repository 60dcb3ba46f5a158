"""SQL rows ⇄ domain objects: rows are mapped on the way out, so callers hold plain copies."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any

from bot.core.outbound import OutboxMessage, OutboxStatus
from bot.core.people import Deputy, DutyShift, Station, StationKind
from bot.core.tickets import Attachment, AttachmentKind, Ticket, TicketStatus, TimelineEntry, TimelineKind
from storage.models import (
    DeputyRow,
    DutyShiftRow,
    OutboxRow,
    StationRow,
    TicketAttachmentRow,
    TicketRow,
    TimelineRow,
)


def columns_of(model: Any) -> list[Any]:
    """The model's mapped columns, for a list read as plain rows: what it maps to a domain copy
    anyway, without building (and tracking) an ORM object per row. Still an ORM select: the
    session's pending changes are flushed first."""
    return [getattr(model, c.key) for c in model.__mapper__.column_attrs]


def station_of(row: StationRow) -> Station:
    return Station(
        code=row.code,
        name=row.name,
        kind=StationKind(row.kind),
        town=row.town,
        address=row.address,
        specialties=tuple(row.specialties or ()),
        places=tuple(row.places or ()),
    )


def deputy_of(row: DeputyRow) -> Deputy:
    return Deputy(
        code=row.code,
        name=row.name,
        level=row.level,
        station_code=row.station_code,
        phone=row.phone,
        openid=row.openid,
    )


def shift_of(row: DutyShiftRow) -> DutyShift:
    day: date | int = row.day_date if row.day_date is not None else int(row.weekday or 0)
    return DutyShift(row.station_code, row.deputy_code, day, row.start, row.end)


def ticket_of(row: TicketRow) -> Ticket:
    return Ticket(
        number=row.number,
        citizen_openid=row.citizen_openid,
        category=row.category,
        summary=row.summary,
        place=row.place,
        details=row.details,
        station_code=row.station_code,
        created_at=row.created_at,
        status=TicketStatus(row.status),
        deputy_code=row.deputy_code,
        phone=row.phone,
        share_contact=row.share_contact,
        attachments=[Attachment(AttachmentKind(a.kind), a.media_id, a.url, a.text) for a in row.attachments],
        timeline=[TimelineEntry(e.at, TimelineKind(e.kind), e.actor, e.text) for e in row.timeline],
        rating=row.rating,
        rating_comment=row.rating_comment,
        reception_id=row.reception_id,
    )


def ticket_fields(ticket: Ticket) -> dict[str, Any]:
    return {
        "citizen_openid": ticket.citizen_openid,
        "category": ticket.category,
        "summary": ticket.summary,
        "place": ticket.place,
        "details": ticket.details,
        "station_code": ticket.station_code,
        "created_at": ticket.created_at,
        "status": str(ticket.status),
        "deputy_code": ticket.deputy_code,
        "phone": ticket.phone,
        "share_contact": ticket.share_contact,
        "rating": ticket.rating,
        "rating_comment": ticket.rating_comment,
        "reception_id": ticket.reception_id,
        **timeline_times(ticket),
    }


def timeline_times(ticket: Ticket) -> dict[str, datetime | None]:
    """The timeline's moments the console filters and rates by, stored on the ticket row."""
    def at(kinds: tuple[TimelineKind, ...], pick: Any) -> datetime | None:
        times = [e.at for e in ticket.timeline if e.kind in kinds]
        return pick(times) if times else None

    return {"assigned_at": at((TimelineKind.ASSIGNED, TimelineKind.TRANSFERRED), max),
            "accepted_at": at((TimelineKind.ACCEPTED,), min), "resolved_at": at((TimelineKind.RESOLVED,), min)}


def append_children(row: TicketRow, ticket: Ticket) -> None:
    """Timelines only grow: rows beyond those stored are new."""
    for seq in range(len(row.timeline), len(ticket.timeline)):
        e = ticket.timeline[seq]
        row.timeline.append(TimelineRow(seq=seq, at=e.at, kind=str(e.kind), actor=e.actor, text=e.text))
    for seq in range(len(row.attachments), len(ticket.attachments)):
        a = ticket.attachments[seq]
        row.attachments.append(
            TicketAttachmentRow(seq=seq, kind=str(a.kind), media_id=a.media_id, url=a.url, text=a.text)
        )


def message_of(row: OutboxRow) -> OutboxMessage:
    return OutboxMessage(
        recipient_openid=row.recipient_openid,
        text=row.text,
        template_key=row.template_key,
        template_data=dict(row.template_data or {}),
        id=row.id,
        status=OutboxStatus(row.status),
        channel=row.channel,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        sent_at=row.sent_at,
        ticket_number=row.ticket_number,
        purpose=row.purpose or "",
    )


def message_fields(message: OutboxMessage) -> dict[str, Any]:
    return {
        "recipient_openid": message.recipient_openid,
        "text": message.text,
        "template_key": message.template_key,
        "template_data": dict(message.template_data),
        "status": str(message.status),
        "channel": message.channel,
        "attempts": message.attempts,
        "next_attempt_at": message.next_attempt_at,
        "last_error": message.last_error,
        "sent_at": message.sent_at,
        "ticket_number": message.ticket_number,
        "purpose": message.purpose,
    }


def assign_changed(row: Any, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if getattr(row, name) != value:  # untouched attributes keep the row clean
            setattr(row, name, value)


def insert_for(session: Any) -> Any:
    """The session's dialect's INSERT (with ON CONFLICT)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert
