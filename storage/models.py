"""SQLAlchemy tables. Rows are mapped to and from the domain dataclasses in storage/sql.py; the
domain never sees these classes.

References between aggregates (deputy → station, ticket → deputy, …) are plain codes without
foreign keys: the district queue is a station code with no row, and import order is checked by
the importer. Child rows of a ticket (timeline entries, attachments) do have foreign keys."""
from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.core.tickets import FIRST_TICKET_NUMBER

# named constraints so migrations can refer to them on every backend
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class StationRow(Base):
    __tablename__ = "stations"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8))
    town: Mapped[str] = mapped_column(String(100), index=True)
    address: Mapped[str] = mapped_column(String(500), default="")
    specialties: Mapped[list[str]] = mapped_column(JSON, default=list)
    places: Mapped[list[str]] = mapped_column(JSON, default=list)


class DeputyRow(Base):
    __tablename__ = "deputies"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(8))
    station_code: Mapped[str] = mapped_column(String(64), index=True)
    phone: Mapped[str] = mapped_column(String(32), default="")
    openid: Mapped[str | None] = mapped_column(String(128), unique=True)


class DutyShiftRow(Base):
    """`day` is a date or an ISO weekday; exactly one of day_date / weekday is set, and day_key
    ("2026-12-01" or "w3") makes the natural key comparable in one unique constraint."""

    __tablename__ = "duty_shifts"
    __table_args__ = (
        UniqueConstraint("station_code", "deputy_code", "day_key", "start", name="uq_duty_shifts_key"),
        CheckConstraint("(day_date IS NULL) <> (weekday IS NULL)", name="one_day_form"),
        CheckConstraint("weekday IS NULL OR (weekday BETWEEN 1 AND 7)", name="weekday_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    station_code: Mapped[str] = mapped_column(String(64), index=True)
    deputy_code: Mapped[str] = mapped_column(String(64), index=True)
    day_key: Mapped[str] = mapped_column(String(16))
    day_date: Mapped[date | None] = mapped_column(Date)
    weekday: Mapped[int | None] = mapped_column(SmallInteger)
    start: Mapped[time] = mapped_column(Time)
    end: Mapped[time] = mapped_column(Time)


class DirectoryVersionRow(Base):
    """One row: changed by triggers whenever stations, deputies or duty_shifts change (migration
    0015), so each process can keep those three tables as a snapshot (storage/sql_directory.py)."""

    __tablename__ = "directory_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger)


class TicketRow(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_deputy_status", "deputy_code", "status"),
        Index("ix_tickets_station_status", "station_code", "status"),
        Index("ix_tickets_status_created", "status", "created_at"),
        Index("ix_tickets_status_assigned", "status", "assigned_at"),
        Index("ix_tickets_rating", "rating"),
        # the dashboard's rates per station and per deputy: read from the index alone
        Index("ix_tickets_station_rates", "station_code", "created_at", "accepted_at", "resolved_at", "rating"),
        Index("ix_tickets_deputy_rates", "deputy_code", "created_at", "accepted_at", "resolved_at", "rating"),
        {"sqlite_autoincrement": True},  # numbers are never reused, and start at 1001 (see below)
    )

    # the primary key is the ticket number: the database hands out unique, increasing numbers
    number: Mapped[int] = mapped_column(
        Integer, Identity(start=FIRST_TICKET_NUMBER), primary_key=True, autoincrement=True
    )
    version: Mapped[int] = mapped_column(Integer, default=1)  # optimistic lock: no lost updates
    citizen_openid: Mapped[str] = mapped_column(String(128), index=True)
    category: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text)
    place: Mapped[str] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text, default="")
    station_code: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16))
    deputy_code: Mapped[str | None] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(32))
    share_contact: Mapped[bool] = mapped_column(Boolean, default=False)
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    rating_comment: Mapped[str] = mapped_column(Text, default="")
    reception_id: Mapped[int | None] = mapped_column(Integer)  # filed by staff at this reception day
    # read by the console's rates and tabs (storage/console_queries.py); written from the timeline
    # on every save (storage/sql_mapping.py timeline_times)
    assigned_at: Mapped[datetime | None] = mapped_column(DateTime)  # last assigned or transferred
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime)  # first accepted
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)  # first resolved

    timeline: Mapped[list[TimelineRow]] = relationship(
        order_by="TimelineRow.seq", cascade="all, delete-orphan", lazy="selectin"
    )
    attachments: Mapped[list[TicketAttachmentRow]] = relationship(
        order_by="TicketAttachmentRow.seq", cascade="all, delete-orphan", lazy="selectin"
    )

    __mapper_args__: dict[str, Any] = {"version_id_col": version}


class TimelineRow(Base):
    # the table keeps its first name: renaming it would be a migration for nothing
    __tablename__ = "ticket_events"
    __table_args__ = (UniqueConstraint("ticket_number", "seq", name="uq_ticket_events_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_number: Mapped[int] = mapped_column(ForeignKey("tickets.number", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # position in the timeline
    at: Mapped[datetime] = mapped_column(DateTime)
    kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64), default="")
    text: Mapped[str] = mapped_column(Text, default="")


class TicketAttachmentRow(Base):
    __tablename__ = "ticket_attachments"
    __table_args__ = (UniqueConstraint("ticket_number", "seq", name="uq_ticket_attachments_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_number: Mapped[int] = mapped_column(ForeignKey("tickets.number", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    media_id: Mapped[str] = mapped_column(String(256), default="")
    url: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text, default="")


class CitizenRow(Base):
    __tablename__ = "citizens"

    openid: Mapped[str] = mapped_column(String(128), primary_key=True)
    station_code: Mapped[str | None] = mapped_column(String(64))
    subscribed: Mapped[bool] = mapped_column(Boolean, default=True)
    scene: Mapped[str] = mapped_column(String(64), default="")
    scene_started_at: Mapped[datetime | None] = mapped_column(DateTime)


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next", "status", "next_attempt_at"),
        Index("ix_outbox_recipient_status", "recipient_openid", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    recipient_openid: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    template_key: Mapped[str] = mapped_column(String(64), default="")
    template_data: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(32), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    ticket_number: Mapped[int | None] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(32), default="")


class PushFailureRow(Base):
    """A push that failed for good, for its station's staff and the next on-duty deputy."""

    __tablename__ = "push_failures"

    message_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # the outbox row
    station_code: Mapped[str] = mapped_column(String(64), index=True)
    ticket_number: Mapped[int | None] = mapped_column(Integer)
    recipient_openid: Mapped[str] = mapped_column(String(128))
    error: Mapped[str] = mapped_column(Text, default="")
    failed_at: Mapped[datetime] = mapped_column(DateTime)
    told_at: Mapped[datetime | None] = mapped_column(DateTime)


class ProcessedInboundRow(Base):
    """An inbound message whose effect is stored: written in the effect's own transaction."""

    __tablename__ = "processed_inbound"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)  # Inbound.dedupe_key
    handled_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    ticket_number: Mapped[int | None] = mapped_column(Integer)
    reply: Mapped[str | None] = mapped_column(Text)


class LateInboundRow(Base):
    """A message answered `success` before its handler finished, until its reply is pushed."""

    __tablename__ = "late_inbound"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)  # Inbound.dedupe_key
    inbound: Mapped[str] = mapped_column(Text)  # the Inbound as JSON
    kept_at: Mapped[datetime] = mapped_column(DateTime)
    next_try_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)


class BindCodeRow(Base):
    __tablename__ = "bind_codes"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    deputy_code: Mapped[str] = mapped_column(String(64), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class ReceptionRow(Base):
    __tablename__ = "receptions"
    __table_args__ = (
        UniqueConstraint("station_code", "day", "start", name="uq_receptions_key"),
        Index("ix_receptions_day_start", "day", "start"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    station_code: Mapped[str] = mapped_column(String(64), index=True)
    deputy_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    day: Mapped[date] = mapped_column(Date)
    start: Mapped[time] = mapped_column(Time)
    end: Mapped[time] = mapped_column(Time)
    topic: Mapped[str] = mapped_column(String(200))
    place: Mapped[str] = mapped_column(String(500))
    live_url: Mapped[str] = mapped_column(String(500), default="")
    capacity: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    follow_up: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class FollowRow(Base):
    """A citizen following a station's receptions; `tagged` = the WeChat user tag mirrors this row."""

    __tablename__ = "follows"
    __table_args__ = (Index("ix_follows_station_active", "station_code", "active"),)

    openid: Mapped[str] = mapped_column(String(128), primary_key=True)
    station_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    since: Mapped[datetime] = mapped_column(DateTime)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    tagged: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    morning_reminder: Mapped[bool] = mapped_column(Boolean, default=True)


class TownTagRow(Base):
    """The WeChat user tag of a town (WeChat allows 100 tags: one per town, not per station)."""

    __tablename__ = "town_tags"

    town: Mapped[str] = mapped_column(String(100), primary_key=True)
    tag_id: Mapped[int] = mapped_column(Integer)


class ReminderRow(Base):
    """A reception reminder done: (reception, kind) once, whoever runs the job."""

    __tablename__ = "reception_reminders"

    reception_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    openids: Mapped[list[str]] = mapped_column(JSON, default=list)
    at: Mapped[datetime] = mapped_column(DateTime)


class BroadcastRow(Base):
    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    audience_kind: Mapped[str] = mapped_column(String(16))
    audience: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    reception_id: Mapped[int | None] = mapped_column(Integer)
    plan: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")


class BroadcastSendRow(Base):
    """One mass call of a broadcast, claimed and marked as it goes (the outbox pattern)."""

    __tablename__ = "broadcast_sends"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "seq", name="uq_broadcast_sends_seq"),
        Index("ix_broadcast_sends_broadcast_status", "broadcast_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(16))
    tag_id: Mapped[int | None] = mapped_column(Integer)
    openids: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    msg_id: Mapped[str] = mapped_column(String(64), default="")
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)


class MassBudgetRow(Base):
    """Mass messages a user received in a calendar month (WeChat allows 4)."""

    __tablename__ = "mass_budget"

    openid: Mapped[str] = mapped_column(String(128), primary_key=True)
    month: Mapped[str] = mapped_column(String(7), primary_key=True)
    used: Mapped[int] = mapped_column(SmallInteger, default=0)


def data_tables() -> list[str]:
    """Every table but directory_version, whose one row the triggers keep: what a reset of the
    database to empty (tests, benchmarks) truncates."""
    return [t.name for t in Base.metadata.sorted_tables if t.name != DirectoryVersionRow.__tablename__]


SEED_SQLITE_TICKET_SEQUENCE = (
    f"INSERT INTO sqlite_sequence (name, seq) VALUES ('tickets', {FIRST_TICKET_NUMBER - 1})"
)


@event.listens_for(TicketRow.__table__, "after_create")
def _seed_sqlite_ticket_numbers(target: Any, connection: Any, **kw: Any) -> None:
    # SQLite ignores Identity(start=...); AUTOINCREMENT continues from sqlite_sequence instead
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(SEED_SQLITE_TICKET_SEQUENCE)
