"""Reception days: store, cancel and list receptions (the console, the API and the import call
these), answer a citizen's schedule question in chat, and send the reminders.

The rules are bot/core/receptions.py's; this module loads what they need and stores the result."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.core.errors import DomainError
from bot.core.people import Deputy, Station
from bot.core.outbound import OutboxMessage
from bot.core.ports import UnitOfWork
from bot.core.receptions import (
    FOLLOWERS_MORNING,
    DateSpan,
    FollowUp,
    Reception,
    ReceptionInvalid,
    check_follow_up,
    check_reception,
    date_span,
    due_reminders,
    nearest_first,
)
from bot.texts import Texts
from handlers import citizens
from handlers.reception_notices import changed, tell_told
from handlers.services import Services

MAX_ANSWERS = 3
_TOWN_SUFFIXES = ("街道", "镇", "度假区", "新城")


# --- staff: store, cancel, list ---------------------------------------------------------------------
async def store_reception(uow: UnitOfWork, reception: Reception, now: datetime,
                          texts: Texts | None = None) -> tuple[Reception, str]:
    """Insert, or update the reception with the same id (or the same station, day and start: an
    import's upsert). Returns it with 'created' | 'updated' | 'unchanged'. Raises ReceptionInvalid.
    With `texts`, a change of date, time, place or deputies is told to everyone already told of
    it (in the same transaction), and its reminders then go out for the new time."""
    current = await uow.receptions.get(reception.id) if reception.id is not None else \
        await uow.receptions.by_key(*reception.key)
    if current is not None:
        reception = replace(reception, id=current.id, status=current.status, follow_up=current.follow_up)
        if current == reception:
            return current, "unchanged"
    errors = check_reception(
        reception, now=now, station_codes=[s.code for s in await uow.stations.list()],
        deputy_codes=[d.code for d in await uow.deputies.list()],
        others=await uow.receptions.between(reception.day, reception.day))
    if errors:
        raise ReceptionInvalid(errors)
    if current is None:
        return await uow.receptions.add(reception), "created"
    await uow.receptions.save(reception)
    if texts is not None and reception.scheduled and changed(current, reception):
        names = {d.code: d.name for d in await uow.deputies.list()}
        text = texts.get("reception_changed_notice", month=current.day.month, day=current.day.day,
                         start=f"{current.start:%H:%M}", place=current.place,
                         line=reception_line(reception, names, texts))
        await tell_told(uow, reception, text, texts.get("reception_field_changed"), now)
    return reception, "updated"


async def create_reception(services: Services, reception: Reception) -> Reception:
    """Store a new reception, or (with an id) edit one: see store_reception."""
    async with services.uow() as uow:
        stored, _ = await store_reception(uow, reception, services.clock.now(), services.texts)
        await uow.commit()
    return stored


async def cancel_reception(services: Services, reception_id: int) -> Reception:
    """Cancel it: no reminder goes out any more, and everyone already told of it (reminded, or
    reached by its announcement) is told (in the same transaction)."""
    async with services.uow() as uow:
        reception = await uow.receptions.get(reception_id)
        if reception is None:
            raise DomainError("reception_not_found", id=reception_id)
        if reception.scheduled:
            reception = reception.cancelled()
            await uow.receptions.save(reception)
            notice = services.texts.get("reception_cancelled_notice", month=reception.day.month, day=reception.day.day,
                                        start=f"{reception.start:%H:%M}", place=reception.place, topic=reception.topic)
            await tell_told(uow, reception, notice, services.texts.get("reception_field_cancelled"),
                            services.clock.now())
            await uow.commit()
    return reception


async def record_reception(services: Services, reception_id: int, follow_up: FollowUp) -> Reception:
    """Store what happened at the reception (deputies present, visitors, notes, the tickets filed
    for the issues raised); recording again replaces it, keeping tickets filed before. Raises
    ReceptionInvalid (or DomainError reception_not_found)."""
    async with services.uow() as uow:
        reception = await uow.receptions.get(reception_id)
        if reception is None:
            raise DomainError("reception_not_found", id=reception_id)
        errors = check_follow_up(reception, follow_up, services.clock.now().date())
        if errors:
            raise ReceptionInvalid(errors)
        earlier = reception.follow_up.tickets if reception.follow_up else ()
        tickets = tuple(dict.fromkeys((*earlier, *follow_up.tickets)))
        reception = reception.recorded(replace(follow_up, tickets=tickets))
        await uow.receptions.save(reception)
        await uow.commit()
    return reception


async def send_reminders(services: Services) -> int:
    """The reminders due now, each (reception, kind) once whoever runs it: claimed in the same
    transaction as its outbox messages. How many reminders went out."""
    now = services.clock.now()
    settings = services.settings
    eve_at, morning_at = time.fromisoformat(settings.reminder_eve_time), time.fromisoformat(settings.reminder_morning_time)
    async with services.uow() as uow:
        soon = await uow.receptions.between(now.date(), now.date() + timedelta(days=1))
    done = 0
    for reception in soon:
        for kind in due_reminders(reception, now, eve_at=eve_at, morning_at=morning_at):
            async with services.uow() as uow:
                if kind == FOLLOWERS_MORNING:
                    follows = await uow.follows.followers([reception.station_code])
                    openids = [f.openid for f in follows if f.morning_reminder]
                else:
                    deputies = [await uow.deputies.get(code) for code in reception.deputy_codes]
                    openids = [d.openid for d in deputies if d is not None and d.openid]
                # keyed by the start too: after a change of time it goes out once more, for the new time
                key = f"{kind}@{reception.starts_at:%Y%m%d%H%M}"
                if not await uow.reminders.claim(reception.id, key, openids, now):  # type: ignore[arg-type]
                    continue  # another run did it
                names = {d.code: d.name for d in await uow.deputies.list()}
                text = services.texts.get(f"reception_remind_{kind}",
                                          line=reception_line(reception, names, services.texts))
                for openid in openids:
                    await uow.outbox.add(OutboxMessage(recipient_openid=openid, text=text, created_at=now))
                await uow.commit()
                done += 1
    return done


async def list_receptions(services: Services, *, station: str | None = None, town: str | None = None,
                          first: date | None = None, last: date | None = None) -> list[Reception]:
    """Receptions from `first` (default today) to `last`, of one station or one town's stations."""
    async with services.uow() as uow:
        codes: list[str] | None = None
        if station or town:
            codes = [s.code for s in await uow.stations.list()
                     if (not station or s.code == station) and (not town or s.town == town)]
        return list(await uow.receptions.between(first or services.clock.now().date(), last, codes))


def error_texts(errors: Sequence[DomainError], texts: Texts) -> list[str]:
    return [texts.get(e.key, **e.params) for e in errors]


# --- the API's request body (POST /api/v1/receptions), ready to be mounted --------------------------
def reception_from_json(body: Any) -> Reception:
    """A reception from `{station, deputy_codes, date, start, end, topic, place, live_url?, capacity?}`
    (date YYYY-MM-DD, times HH:MM local). Raises ReceptionInvalid naming each bad field; the rules
    (past date, clashes …) are checked when it is stored."""
    errors: list[DomainError] = []
    body = body if isinstance(body, Mapping) else {}

    def text(name: str, *, required: bool = True) -> str:
        value = body.get(name, "")
        if not isinstance(value, str) or (required and not value.strip()):
            errors.append(DomainError("reception_bad_field", field=name))
            return ""
        return value.strip()

    def parse(name: str, parser: Any, key: str) -> Any:
        raw = text(name)
        try:
            return parser(raw) if raw else None
        except ValueError:
            errors.append(DomainError(key, field=name))
            return None

    codes = body.get("deputy_codes")
    if not isinstance(codes, list) or not codes or not all(isinstance(c, str) and c for c in codes):
        errors.append(DomainError("reception_bad_field", field="deputy_codes"))
        codes = []
    capacity = body.get("capacity")
    if capacity is not None and (not isinstance(capacity, int) or isinstance(capacity, bool)):
        errors.append(DomainError("reception_bad_field", field="capacity"))
        capacity = None
    reception = Reception(
        station_code=text("station"), deputy_codes=tuple(codes),
        day=parse("date", date.fromisoformat, "reception_bad_date"),
        start=parse("start", _hh_mm, "reception_bad_time"), end=parse("end", _hh_mm, "reception_bad_time"),
        topic=text("topic"), place=text("place"), live_url=text("live_url", required=False), capacity=capacity)
    if errors:
        raise ReceptionInvalid(errors)
    return reception


def _hh_mm(value: str) -> time:
    if not re.fullmatch(r"\d{1,2}:\d{2}", value):
        raise ValueError(value)
    return time.fromisoformat(value.zfill(5))


def reception_json(reception: Reception) -> dict[str, Any]:
    return {"id": reception.id, "station": reception.station_code, "deputy_codes": list(reception.deputy_codes),
            "date": reception.day.isoformat(), "start": f"{reception.start:%H:%M}", "end": f"{reception.end:%H:%M}",
            "topic": reception.topic, "place": reception.place, "live_url": reception.live_url,
            "capacity": reception.capacity, "status": str(reception.status)}


# --- citizens ask in chat ----------------------------------------------------------------------------
def short_town(town: str) -> str:
    """盛泽镇 → 盛泽, 松陵街道 → 松陵: how people name a town."""
    for suffix in _TOWN_SUFFIXES:
        if town.endswith(suffix) and len(town) - len(suffix) >= 2:
            return town[: -len(suffix)]
    return town


def stations_named(text: str, stations: Sequence[Station], names: Sequence[str] = ()) -> list[Station]:
    """The stations a text names: a station by its name or a place it serves, else a town's stations."""
    words = [text, *names]
    by_name = [s for s in stations if any(s.name in w or any(p in w for p in s.places) for w in words)]
    if by_name:
        return by_name
    return [s for s in stations if any(s.town in w or short_town(s.town) in w for w in words)]


def deputies_named(text: str, deputies: Sequence[Deputy]) -> list[Deputy]:
    """Deputies by full name, or by surname in 王代表."""
    full = [d for d in deputies if d.name and d.name in text]
    if full:
        return full
    return [d for d in deputies if d.name and f"{d.name[0]}代表" in text]


@dataclass(frozen=True)
class ScheduleAnswer:
    receptions: list[Reception]  # nearest first, at most MAX_ANSWERS
    span: DateSpan | None  # the days asked about
    about: str  # the place or deputy asked about ("" for anything)
    next_anywhere: Reception | None  # when nothing matched: the district's next one
    deputy_names: dict[str, str]  # code → name, for the lines


async def find_receptions(services: Services, openid: str, text: str, place_names: Sequence[str] = ()) -> ScheduleAnswer:
    now = services.clock.now()
    span = date_span(text, now.date())
    async with services.uow() as uow:
        stations = list(await uow.stations.list())
        deputies = list(await uow.deputies.list())
        upcoming = [r for r in await uow.receptions.between(now.date()) if r.scheduled and r.ends_at > now]
    home = await citizens.bound_station(services, openid)
    town_of = {s.code: s.town for s in stations}
    named_stations = stations_named(text, stations, place_names)
    named_deputies = deputies_named(text, deputies)
    if named_stations:
        label = named_stations[0].name if len(named_stations) == 1 else "、".join(sorted({s.town for s in named_stations}))
        about = services.texts.get("reception_about_place", place=label)
    elif named_deputies:
        about = services.texts.get("reception_about_deputy", name="、".join(d.name for d in named_deputies))
    else:
        about = ""
    matching = [r for r in upcoming if (span is None or span.contains(r.day))
                and (not named_stations or r.station_code in {s.code for s in named_stations})
                and (not named_deputies or set(r.deputy_codes) & {d.code for d in named_deputies})]
    found = nearest_first(matching, now=now, home_station=home.code if home else None,
                          home_town=home.town if home else None, town_of=town_of, limit=MAX_ANSWERS)
    next_anywhere = None if found else next(iter(nearest_first(upcoming, now=now, home_station=None, home_town=None,
                                                               town_of=town_of, limit=1)), None)
    return ScheduleAnswer(found, span, about, next_anywhere, {d.code: d.name for d in deputies})


async def answer_schedule(services: Services, openid: str, text: str, place_names: Sequence[str] = ()) -> str:
    """The chat answer to 这周哪个代表接待 / 盛泽镇哪天有代表接待 / 王代表什么时候在 …"""
    answer = await find_receptions(services, openid, text, place_names)
    texts = services.texts
    names = answer.deputy_names
    span = span_text(answer.span, texts) if answer.span else ""
    if answer.receptions:
        header = texts.get("reception_answer_header_span", span=span) if span else texts.get("reception_answer_header")
        lines = [reception_line(r, names, texts) for r in answer.receptions]
        return "\n".join([header, *lines, texts.get("reception_answer_footer")])
    parts = [texts.get("reception_none_span", span=span, about=answer.about) if span
             else texts.get("reception_none", about=answer.about)]
    if answer.next_anywhere is not None:
        parts.append(texts.get("reception_next_anywhere", line=reception_line(answer.next_anywhere, names, texts)))
    parts.append(texts.get("reception_offer_issue"))
    return "\n".join(parts)


def reception_line(reception: Reception, deputy_names: Mapping[str, str], texts: Texts) -> str:
    line = texts.get("reception_line", month=reception.day.month, day=reception.day.day,
                     weekday=texts.raw("reception_weekdays")[reception.day.weekday()],
                     start=f"{reception.start:%H:%M}", end=f"{reception.end:%H:%M}", place=reception.place,
                     deputies="、".join(deputy_names.get(c, c) for c in reception.deputy_codes), topic=reception.topic)
    if reception.live_url:
        line += "\n" + texts.get("reception_live_line", url=reception.live_url)
    return line


def span_text(span: DateSpan, texts: Texts) -> str:
    if span.first == span.last:
        return texts.get("reception_span_day", month=span.first.month, day=span.first.day)
    return texts.get("reception_span_days", month=span.first.month, day=span.first.day,
                     month2=span.last.month, day2=span.last.day)
