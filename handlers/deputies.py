"""Deputies: binding a WeChat account with a one-time code, and handling tickets by message.

Commands are parsed with fixed patterns, never a classifier: a deputy's words must do exactly what
they say. Full-width characters are folded first (＃１０２４ == #1024), spaces are optional and
`编号1024` means the same as `#1024`:

    受理 #1024              accept
    #1024 <text>            relay the text to the citizen
    办结 #1024 <result>     resolve with a result (the citizen is asked to rate it)
    转 #1024 <deputy_code>  hand the ticket over to another deputy
    我的工单                 list open tickets
    帮助                     help

Anything else returns None, so the caller treats the deputy as an ordinary citizen.
"""
from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from bot.domain import Deputy, DomainError, OutboxMessage, Ticket, mask_openid
from bot.ports import UnitOfWork
from handlers import notify
from handlers.services import Services

log = logging.getLogger(__name__)

BIND_CODE_TTL = timedelta(hours=24)
NOT_A_DEPUTY_TTL = 300  # seconds; most senders are citizens: spare each message a database look-up


def not_a_deputy_key(openid: str) -> str:
    return f"not-deputy:{openid}"


async def bound_deputy(services: Services, openid: str) -> Deputy | None:
    """The deputy bound to this WeChat account, if any (a miss is remembered; binding forgets it)."""
    if await services.kv.get(not_a_deputy_key(openid)) is not None:
        return None
    async with services.uow() as uow:
        deputy = await uow.deputies.by_openid(openid)
    if deputy is None:
        await services.kv.set(not_a_deputy_key(openid), "1", ttl=NOT_A_DEPUTY_TTL)
    return deputy

_REF = r"(?:#|编号)\s*#?\s*(\d+)"  # a ticket reference that must be marked as one
_NUM = r"(?:(?:#|编号)\s*#?\s*)?(\d+)"  # after 受理/办结/转 a bare number is unambiguous
_SEP = r"[\s:,、.。]*"
_ACCEPT = re.compile(rf"受理\s*{_NUM}{_SEP}(.*)", re.S)
_RESOLVE = re.compile(rf"办结\s*{_NUM}{_SEP}(.*)", re.S)
_TRANSFER = re.compile(rf"转(?:给|交|办)?\s*{_NUM}{_SEP}(?:转?给|至|到)?\s*(.*?)\s*(?:代表)?[\s.。!]*", re.S)
_RELAY = re.compile(rf"{_REF}{_SEP}(.*)", re.S)
_BIND = re.compile(r"绑定\s*[:]?\s*(.*)", re.S)
_MY_TICKETS = {"我的工单", "我的工单列表", "工单列表", "我的待办"}
_HELP = {"帮助", "代表帮助", "help", "?", "代表怎么回复", "怎么回复"}
_BARE = re.compile(r"(受理|办结|转)(?:#|编号)?[.。]?")
_EXAMPLES = {"受理": "受理 #1024", "办结": "办结 #1024 路灯已经修好", "转": "转 #1024 D002"}


def normalize(text: str) -> str:
    """Fold full-width forms (＃, digits, letters, spaces, ：，) to ASCII and trim."""
    return unicodedata.normalize("NFKC", text).strip()


def fold_width(text: str) -> str:
    """Full-width ASCII forms and the ideographic space to ASCII, one character for one, so match
    positions in the folded text point at the same words in the original."""
    return "".join(
        chr(ord(c) - 0xFEE0) if "\uff01" <= c <= "\uff5e" else " " if c == "\u3000" else c for c in text
    )


# --- binding -----------------------------------------------------------------------------------
async def create_bind_code(services: Services, deputy_code: str) -> str:
    """A 6-digit code the deputy sends as 「绑定 <code>」; single use, valid 24 h."""
    now = services.clock.now()
    async with services.uow() as uow:
        if await uow.deputies.get(deputy_code) is None:
            raise DomainError("deputy_unknown", code=deputy_code)
        code = f"{secrets.randbelow(10**6):06d}"
        await uow.bind_codes.create(deputy_code, code, now + BIND_CODE_TTL)
        await uow.commit()
    log.info("bind code created for deputy %s", deputy_code)
    return code


def parse_bind_command(text: str) -> str | None:
    """The code part of 「绑定 123456」 ("" when missing); None when the text is not a bind command."""
    match = _BIND.fullmatch(normalize(text))
    return match.group(1).strip() if match else None


async def bind_deputy(services: Services, openid: str, code: str) -> str:
    """Link this WeChat account to the deputy the code was made for; returns the reply text."""
    texts = services.texts
    code = "".join(normalize(code).split())
    if not code:
        return texts.get("bind_usage")
    if not re.fullmatch(r"\d{6}", code):
        return texts.get("bind_code_invalid")
    async with services.uow() as uow:
        deputy_code = await uow.bind_codes.consume(code, services.clock.now())
        deputy = await uow.deputies.get(deputy_code) if deputy_code else None
        if deputy is None:
            log.info("bind refused for %s", mask_openid(openid))
            return texts.get("bind_code_invalid")
        await uow.deputies.bind(deputy.code, openid)
        open_count = len(await uow.tickets.list_open_for_deputy(deputy.code))
        station = await uow.stations.get(deputy.station_code)
        await uow.commit()
    await services.kv.delete(not_a_deputy_key(openid))
    log.info("deputy %s bound to %s", deputy.code, mask_openid(openid))
    return texts.get(
        "bind_ok",
        name=deputy.name,
        station=station.name if station else deputy.station_code,
        open_hint=texts.get("bind_open_hint", count=open_count) if open_count else "",
    )


# --- ticket commands -----------------------------------------------------------------------------
@dataclass
class _Outcome:
    reply: str
    messages: list[OutboxMessage | None] = field(default_factory=list)


_Operation = Callable[[UnitOfWork, Ticket], Awaitable[_Outcome]]


async def handle_deputy_message(services: Services, deputy: Deputy, text: str) -> str | None:
    """The reply to a bound deputy's message, or None when it is not a deputy command."""
    texts = services.texts
    original = text.strip()
    body = fold_width(original)  # commands are matched folded; the words a deputy writes go on as written
    compact = "".join(body.split())

    def said(match: re.Match[str], group: int) -> str:
        return original[match.start(group):match.end(group)].strip()

    if compact in _MY_TICKETS:
        return await _my_tickets(services, deputy)
    if compact.lower() in _HELP:
        return texts.get("deputy_help")

    if match := _ACCEPT.fullmatch(body):
        # 「受理 #1024 明天去现场」: accept, and the words after it go to the citizen too
        return await _accept(services, deputy, int(match.group(1)), said(match, 2))
    if match := _RESOLVE.fullmatch(body):
        number, result = int(match.group(1)), said(match, 2)
        if not result:
            return texts.get("deputy_need_result", number=number)
        return await _resolve(services, deputy, number, result)
    if match := _TRANSFER.fullmatch(body):
        number, target = int(match.group(1)), match.group(2)
        if not target:
            return texts.get("deputy_need_target", number=number)
        return await _transfer(services, deputy, number, target)
    if match := _RELAY.fullmatch(body):
        return await _relay_or_show(services, deputy, int(match.group(1)), said(match, 2))

    if match := _BARE.fullmatch(compact):
        # the command word alone (or with an empty #): clearly meant for us, so explain
        return texts.get("deputy_need_number", example=_EXAMPLES[match.group(1)])
    return None


def is_deputy_command(text: str) -> bool:
    """True for the commands only a deputy can give (受理/办结/转 with a number, 我的工单).
    `#1024 ...` is not among them: citizens use it for their own tickets."""
    body = normalize(text)
    compact = "".join(body.split())
    return (
        compact in _MY_TICKETS
        or any(p.fullmatch(body) for p in (_ACCEPT, _RESOLVE, _TRANSFER))
        or _BARE.fullmatch(compact) is not None
    )


def unbound_reply(services: Services, text: str) -> str | None:
    """For a sender who is not a bound deputy: the explanation when they give a deputy command
    (so nothing happens silently), else None."""
    return services.texts.get("deputy_not_bound") if is_deputy_command(text) else None


async def _run(services: Services, deputy: Deputy, number: int, operation: _Operation) -> str:
    """Load the ticket, apply the change and record its pushes in one unit of work; a broken
    rule (wrong deputy, closed ticket...) is answered and changes nothing."""
    texts = services.texts
    async with services.uow() as uow:
        ticket = await uow.tickets.get(number)
        if ticket is None:
            return texts.get("deputy_ticket_not_found", number=number)
        try:
            outcome = await operation(uow, ticket)
        except DomainError as error:
            log.info("deputy %s on #%d refused: %s", deputy.code, number, error.key)
            return texts.get(error.key, **error.params)
        await uow.tickets.save(ticket)
        for message in outcome.messages:
            if message is not None:
                await uow.outbox.add(message)
        await uow.commit()
    services.kick_delivery()
    return outcome.reply


async def _accept(services: Services, deputy: Deputy, number: int, said: str = "") -> str:
    texts, now = services.texts, services.clock.now()

    async def operation(uow: UnitOfWork, ticket: Ticket) -> _Outcome:
        ticket.accept(deputy.code, now)
        outcome = _Outcome(texts.get("deputy_accepted_ok", number=number),
                           [notify.citizen_accepted(texts, ticket, deputy, now)])
        if said:
            ticket.reply(deputy.code, said, now)
            outcome.messages.append(notify.citizen_replied(texts, ticket, deputy, said, now))
        return outcome

    return await _run(services, deputy, number, operation)


async def _relay_or_show(services: Services, deputy: Deputy, number: int, said: str) -> str | None:
    texts, now = services.texts, services.clock.now()
    async with services.uow() as uow:
        ticket = await uow.tickets.get(number)
    if ticket is None:
        return texts.get("deputy_ticket_not_found", number=number) if said else None
    if ticket.deputy_code != deputy.code and ticket.citizen_openid == deputy.openid:
        return None  # the deputy's own report as a citizen: the citizen dialogue handles it
    if not said:
        # `#1024` alone: the deputy's own ticket in detail; anything else is the citizen
        # dialogue's business (it shows a citizen their ticket)
        return _detail(services, ticket) if ticket.deputy_code == deputy.code else None

    async def operation(uow: UnitOfWork, ticket: Ticket) -> _Outcome:
        ticket.reply(deputy.code, said, now)
        return _Outcome(texts.get("deputy_replied_ok", number=number),
                        [notify.citizen_replied(texts, ticket, deputy, said, now)])

    return await _run(services, deputy, number, operation)


async def _resolve(services: Services, deputy: Deputy, number: int, result: str) -> str:
    texts, now = services.texts, services.clock.now()

    async def operation(uow: UnitOfWork, ticket: Ticket) -> _Outcome:
        ticket.resolve(deputy.code, result, now)
        return _Outcome(texts.get("deputy_resolved_ok", number=number),
                        [notify.citizen_resolved(texts, ticket, result, now)])

    return await _run(services, deputy, number, operation)


async def _transfer(services: Services, deputy: Deputy, number: int, target_code: str) -> str:
    texts, now = services.texts, services.clock.now()

    async def operation(uow: UnitOfWork, ticket: Ticket) -> _Outcome:
        target = await _find_deputy(uow, target_code)
        ticket.transfer(deputy.code, target, now)
        key = "deputy_transfer_ok" if target.openid else "deputy_transfer_unbound"
        log.info("ticket #%d transferred from %s to %s", number, deputy.code, target.code)
        return _Outcome(texts.get(key, number=number, deputy=target.name),
                        [notify.deputy_transfer_in(texts, ticket, target, deputy, now),
                         notify.citizen_transferred(texts, ticket, target, now)])

    return await _run(services, deputy, number, operation)


async def _find_deputy(uow: UnitOfWork, wanted: str) -> Deputy:
    """By code (any letter case), else by a name only one deputy has."""
    found = await uow.deputies.get(wanted) or await uow.deputies.get(wanted.upper())
    if found is None:
        named = [d for d in await uow.deputies.list() if d.name == wanted]
        found = named[0] if len(named) == 1 else None
    if found is None:
        raise DomainError("deputy_unknown", code=wanted)
    return found


def _detail(services: Services, ticket: Ticket) -> str:
    texts = services.texts
    return texts.get(
        "deputy_ticket_detail",
        status=texts.get(f"deputy_status_{ticket.status.value}"),
        created=ticket.created_at.strftime("%Y-%m-%d %H:%M"),
        **notify.ticket_body(texts, ticket),
    )


async def _my_tickets(services: Services, deputy: Deputy) -> str:
    texts = services.texts
    async with services.uow() as uow:
        tickets = await uow.tickets.list_open_for_deputy(deputy.code)
    if not tickets:
        return texts.get("deputy_my_tickets_empty")
    lines = [texts.get("deputy_my_tickets_head", count=len(tickets))]
    lines += [
        texts.get(
            "deputy_my_tickets_line",
            number=t.number,
            status=texts.get(f"deputy_status_{t.status.value}"),
            category=t.category,
            place=t.place,
            summary=t.summary,
        )
        for t in tickets
    ]
    lines.append(texts.get("deputy_my_tickets_foot"))
    return "\n".join(lines)
