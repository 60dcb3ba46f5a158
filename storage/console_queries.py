"""Read side of the staff console and the API: filtered ticket lists and the dashboard's numbers,
filtered and aggregated in SQL (indexes in storage/sql_staff.py). Writes go through the unit of
work; these queries only read.

`station_codes` is always the caller's scope already applied: None means every station (district
staff), a list means only those."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Float, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from bot.core.tickets import CLOSED_STATUSES, TicketStatus
from storage.models import DeputyRow, StationRow, TicketRow

TABS = ("waiting", "assigned", "late", "resolved", "all")
STAT_GROUPS = ("station", "town", "category", "status", "month")
WORKING = (str(TicketStatus.ASSIGNED), str(TicketStatus.ACCEPTED), str(TicketStatus.REPLIED))
OPEN = (str(TicketStatus.FILED), *WORKING)  # an IN list: index ranges, where != would scan
AGE_BUCKETS = (1, 3, 7, 15, 30)  # open tickets by age, in days: <1, 1-3, 3-7, 7-15, 15-30, 30+
EXPORT_LIMIT = 20_000


@dataclass(frozen=True)
class TicketQuery:
    tab: str = "all"
    station_codes: Sequence[str] | None = None  # scope and the town/station filters, applied
    category: str = ""
    status: str = ""
    since: date | None = None
    until: date | None = None  # inclusive
    rating: int | None = None  # 0 = not rated yet
    deputy: str = ""
    q: str = ""
    page: int = 1
    per_page: int = 20


@dataclass(frozen=True)
class TicketRowView:
    number: int
    created_at: datetime
    station_code: str
    station_name: str
    town: str
    category: str
    summary: str
    place: str
    status: str
    deputy_code: str
    deputy_name: str
    rating: int | None


@dataclass(frozen=True)
class TicketPage:
    items: list[TicketRowView]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class Rate:
    """One station's or deputy's three rates; None where the sample is below the minimum."""

    key: str
    label: str
    tickets: int
    response: float | None
    on_time: float | None
    satisfaction: float | None
    samples: dict[str, int] = field(default_factory=dict)


def _hours_between(dialect: str, start: Any, end: Any) -> Any:
    if dialect == "sqlite":
        return (func.julianday(end) - func.julianday(start)) * 24.0
    return func.extract("epoch", end - start) / 3600.0


def _within(dialect: str, start: Any, end: Any, limit: timedelta) -> Any:
    """end - start <= limit (false when end is NULL); on PostgreSQL an interval comparison, which
    costs less per row than hours computed with extract()."""
    if dialect == "sqlite":
        return _hours_between(dialect, start, end) <= limit.total_seconds() / 3600
    return end - start <= limit


def _month(dialect: str) -> Any:
    if dialect == "sqlite":
        return func.strftime("%Y-%m", TicketRow.created_at)
    # grouped by the truncated timestamp and formatted per group: to_char on every row costs more
    return func.date_trunc("month", TicketRow.created_at)


def _month_key(value: Any) -> str:
    return value.strftime("%Y-%m") if isinstance(value, datetime) else str(value or "")


class ConsoleQueries:
    def __init__(self, engine: AsyncEngine, late_hours: int = 24, resolve_days: int = 15,
                 min_sample: int = 5) -> None:
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self.dialect = engine.dialect.name
        self.late_hours = late_hours
        self.resolve_days = resolve_days
        self.min_sample = min_sample

    # --- the ticket list ----------------------------------------------------------------------
    def _conditions(self, query: TicketQuery, now: datetime) -> list[Any]:
        t = TicketRow
        where: list[Any] = []
        if query.station_codes is not None:
            where.append(t.station_code.in_(list(query.station_codes)))
        if query.tab == "waiting":
            where.append(t.status == str(TicketStatus.FILED))
        elif query.tab == "assigned":
            where.append(t.status.in_(WORKING))
        elif query.tab == "late":
            # assigned_at: the last assignment or transfer (stored from the timeline)
            where += [t.status == str(TicketStatus.ASSIGNED), t.assigned_at <= now - timedelta(hours=self.late_hours)]
        elif query.tab == "resolved":  # done: resolved, or closed as a duplicate
            where.append(t.status.in_([str(s) for s in CLOSED_STATUSES]))
        if query.category:
            where.append(t.category == query.category)
        if query.status:
            where.append(t.status == query.status)
        if query.since:
            where.append(t.created_at >= datetime.combine(query.since, time.min))
        if query.until:
            where.append(t.created_at < datetime.combine(query.until + timedelta(days=1), time.min))
        if query.rating == 0:
            where.append(t.rating.is_(None))
        elif query.rating is not None:
            where.append(t.rating == query.rating)
        if query.deputy:
            where.append(t.deputy_code == query.deputy)
        words = query.q.strip().lstrip("#")
        if words.isascii() and words.isdigit() and len(words) < 10:  # "¹".isdigit() too
            where.append(t.number == int(words))  # digits alone are a ticket number: one index lookup
        elif words:
            where.append(or_(*(column.contains(words, autoescape=True) for column in (t.summary, t.details, t.place))))
        return where

    async def count(self, query: TicketQuery, now: datetime) -> int:
        async with self._sessions() as s:
            return int(await s.scalar(select(func.count()).select_from(TicketRow)
                                      .where(*self._conditions(query, now))) or 0)

    async def tickets(self, query: TicketQuery, now: datetime, export: bool = False) -> TicketPage:
        where = self._conditions(query, now)
        t = TicketRow
        per_page = EXPORT_LIMIT if export else query.per_page
        page = 1 if export else max(1, query.page)
        # the page's numbers first (a deep page skips index entries, not joined rows), then its rows
        numbers = (select(t.number).where(*where).order_by(t.number.desc())
                   .offset((page - 1) * per_page).limit(per_page).subquery("page"))
        rows_query = (
            select(t.number, t.created_at, t.station_code, StationRow.name, StationRow.town, t.category, t.summary,
                   t.place, t.status, t.deputy_code, DeputyRow.name, t.rating)
            .join(numbers, numbers.c.number == t.number)
            .outerjoin(StationRow, StationRow.code == t.station_code)
            .outerjoin(DeputyRow, DeputyRow.code == t.deputy_code)
            .order_by(t.number.desc())
        )
        total = await self.count(query, now)
        async with self._sessions() as s:
            result = await s.execute(rows_query)
            items = [
                TicketRowView(number, created, code, sname or "", town or "", category, summary, place, status,
                              deputy or "", dname or "", rating)
                for number, created, code, sname, town, category, summary, place, status, deputy, dname, rating
                in result
            ]
        return TicketPage(items, total, page, per_page)

    # --- the dashboard --------------------------------------------------------------------------
    async def counts(self, by: str, query: TicketQuery, now: datetime) -> list[tuple[str, str, int]]:
        """(key, label, count) per group, largest first (months: in order)."""
        if by not in STAT_GROUPS:
            raise ValueError(by)
        t = TicketRow
        where = self._conditions(query, now)
        statement: Any
        if by in ("station", "town"):
            # counted per station on the tickets alone (an index-only scan), then named and summed
            per_station = (select(t.station_code.label("code"), func.count().label("n"))
                           .where(*where).group_by(t.station_code).subquery("per_station"))
            if by == "station":
                key, label = per_station.c.code, StationRow.name
            else:
                key = func.coalesce(StationRow.town, literal(""))
                label = func.max(key)
            n = func.sum(per_station.c.n) if by == "town" else per_station.c.n
            statement = (select(key, label, n).select_from(per_station)
                         .outerjoin(StationRow, StationRow.code == per_station.c.code)
                         .order_by(n.desc(), key))
            if by == "town":
                statement = statement.group_by(key)
        else:
            key = _month(self.dialect) if by == "month" else getattr(t, by)
            statement = select(key, key, func.count()).where(*where).group_by(key)
            statement = statement.order_by(key) if by == "month" else statement.order_by(func.count().desc(), key)
        async with self._sessions() as s:
            rows = [(k, lbl, int(n)) for k, lbl, n in await s.execute(statement)]
        if by == "month":
            return [(_month_key(k), _month_key(k), n) for k, _, n in rows]
        return [(k or "", lbl or "", n) for k, lbl, n in rows]

    async def rates(self, by: str, query: TicketQuery, now: datetime) -> list[Rate]:
        """响应率 (accepted within 24 h), 按时办结率 (resolved within the limit), 满意率 (4–5 of all
        ratings) per station or per deputy. Ranked by satisfaction, then response; groups below the
        minimum sample get None and come last."""
        t = TicketRow
        due = now - timedelta(days=self.resolve_days)
        response_due = now - timedelta(hours=24)
        # accepted_at / resolved_at: the first such timeline entries, stored on the ticket
        accepted_in_time = _within(self.dialect, t.created_at, t.accepted_at, timedelta(hours=24))
        resolved_in_time = _within(self.dialect, t.created_at, t.resolved_at, timedelta(days=self.resolve_days))
        one = literal(1)
        if by == "station":
            key, names = t.station_code, (StationRow, StationRow.code, StationRow.name)
        elif by == "deputy":
            key, names = t.deputy_code, (DeputyRow, DeputyRow.code, DeputyRow.name)
        else:
            raise ValueError(by)
        grouped = (
            select(
                key.label("key"), func.count().label("n"),
                func.sum(case((or_(t.accepted_at.is_not(None), t.created_at <= response_due), one), else_=0)).label("a_n"),
                func.sum(case((accepted_in_time, one), else_=0)).label("a"),
                func.sum(case((or_(t.resolved_at.is_not(None), t.created_at <= due), one), else_=0)).label("r_n"),
                func.sum(case((resolved_in_time, one), else_=0)).label("r"),
                func.count(t.rating).label("rated"),
                func.sum(case((t.rating >= 4, one), else_=0)).label("good"),
            )
            # a duplicate is handled under its original: it counts there, not twice
            .where(*self._conditions(query, now), key.is_not(None), t.status != str(TicketStatus.CLOSED))
            .group_by(key)
            .subquery("grouped")
        )
        table, code, name = names
        g = grouped.c
        statement = (select(g.key, name, g.n, g.a_n, g.a, g.r_n, g.r, g.rated, g.good).select_from(grouped)
                     .outerjoin(table, code == g.key))
        async with self._sessions() as s:
            rows = list(await s.execute(statement))

        def ratio(part: int | None, whole: int | None) -> float | None:
            whole = int(whole or 0)
            return None if whole < self.min_sample else round(int(part or 0) / whole, 4)

        rates = [
            Rate(code, name or code, int(n), ratio(acc, acc_n), ratio(ok, ok_n), ratio(good, rated),
                 {"response": int(acc_n or 0), "on_time": int(ok_n or 0), "satisfaction": int(rated or 0)})
            for code, name, n, acc_n, acc, ok_n, ok, rated, good in rows
        ]
        return sorted(rates, key=lambda r: (r.satisfaction is None, -(r.satisfaction or 0),
                                            r.response is None, -(r.response or 0), r.key))

    async def open_by_age(self, query: TicketQuery, now: datetime) -> list[tuple[int, int]]:
        """(bucket upper bound in days, count; 0 = older than the last bucket) of open tickets."""
        t = TicketRow
        age_days = cast(_hours_between(self.dialect, t.created_at, literal(now)), Float) / 24.0
        whens = [(age_days < days, literal(days)) for days in AGE_BUCKETS]
        bucket = case(*whens, else_=literal(0))
        statement = (
            select(bucket, func.count())
            .where(*self._conditions(query, now), t.status.in_(OPEN))
            .group_by(bucket)
        )
        async with self._sessions() as s:
            found = {int(b): int(n) for b, n in await s.execute(statement)}
        return [(days, found.get(days, 0)) for days in (*AGE_BUCKETS, 0)]


def station_scope_filter(scope_codes: Sequence[str] | None, in_town: Sequence[str] | None,
                         station: str) -> Sequence[str] | None:
    """The scope narrowed by the town filter (its station codes) and the station filter."""
    codes = None if scope_codes is None else list(scope_codes)
    if in_town is not None:
        codes = [c for c in in_town if codes is None or c in codes]
    if station:
        codes = [station] if codes is None or station in codes else []
    return codes
