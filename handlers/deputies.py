"""Deputies: binding a WeChat account with a one-time code, and handling tickets by message.

Commands are parsed with fixed patterns, never a classifier: a deputy's words must do exactly what
they say. Full-width characters are folded first (＃１０２４ == #1024), spaces are optional and
`编号1024` means the same as `#1024`. A ticket number has 1–9 digits. After 受理/办结/转 a number
marked with # or 编号 may run straight into the text (受理#1024明天去); a bare number must be
followed by a space or punctuation (：:，,、。.) or end the message (受理 1024), so a citizen's
「受理3天了还没人管」 or 「转2趟公交才能到医院」 is not a command:

    受理 #1024              accept
    #1024 <text>            relay the text to the citizen
    办结 #1024 <result>     resolve with a result (the citizen is asked to rate it)
    转 #1024 <deputy_code>  hand the ticket over to another deputy
    我的工单                 list open tickets (the words: deputy_words in config/texts/deputy.yaml)
    帮助                     help

Anything else returns None, so the caller treats the deputy as an ordinary citizen.
"""
from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from bot.core import keys
from bot.core.errors import DomainError
from bot.core.people import Deputy
from bot.core.ports import UnitOfWork
from bot.core.privacy import mask_openid
from bot.core.tickets import Ticket
from bot.texts import Texts
from dialogues.words import fold_width
from handlers import channels, failures, notify
from handlers.services import Services, lookup_remembering_misses, retry_on_conflict

log = logging.getLogger(__name__)

BIND_CODE_TTL = timedelta(hours=24)
BIND_CODE_TRIES = 20  # fresh random codes drawn when the drawn one is still valid for someone
NOT_A_DEPUTY_TTL = 300  # seconds
BOUND_DEPUTIES_TTL = 60  # seconds: keys.bound_deputies
# failed 绑定 attempts per WeChat account: a 6-digit code must not be guessable by trying
BIND_FAILURES_MAX = 5
BIND_FAILURE_WINDOW = timedelta(hours=1)
MY_TICKETS_MAX = 10  # lines in 我的工单: one chat bubble (2048 bytes), the oldest first


def bound_deputy_keys(openid: str) -> list[str]:
    """What bound_deputy reads first (one round trip)."""
    return [keys.not_a_deputy(openid), keys.bound_deputies(openid)]


async def bound_deputy(services: Services, openid: str) -> Deputy | None:
    """The deputy bound to this WeChat account, if any (bind_deputy forgets a remembered miss)."""

    async def load() -> Deputy | None:
        async with services.uow() as uow:
            return await uow.deputies.by_openid(openid)

    # most senders are citizens: one look at the bound accounts (and at a remembered miss)
    miss, bound = await services.kv.get_many(bound_deputy_keys(openid))
    if miss is not None:
        return None
    if bound is None:
        async with services.uow() as uow:
            deputies = await uow.deputies.list()
        await _remember_bound_deputies(services, deputies)
        return next((d for d in deputies if d.openid == openid), None)
    try:
        if openid not in json.loads(bound):
            return None
    except ValueError:
        pass  # unreadable: ask the database
    return await lookup_remembering_misses(services.kv, keys.not_a_deputy(openid), NOT_A_DEPUTY_TTL, load)


async def _remember_bound_deputies(services: Services, deputies: Sequence[Deputy]) -> None:
    """Every bucket of keys.bound_deputies, the empty ones too (a missing one means: ask again)."""
    buckets: dict[str, list[str]] = {key: [] for key in keys.all_bound_deputies()}
    for deputy in deputies:
        if deputy.openid:
            buckets[keys.bound_deputies(deputy.openid)].append(deputy.openid)
    await services.kv.batch(sets=[(key, json.dumps(sorted(openids)), BOUND_DEPUTIES_TTL)
                                  for key, openids in buckets.items()])


_NUMBER = r"(\d{1,9})(?!\d)"  # a ticket number; a longer run of digits is no ticket at all
_MARK = r"(?:#|编号)\s*#?\s*"
_REF = rf"{_MARK}{_NUMBER}"  # a ticket reference that must be marked as one (#1024 text)
# after 受理/办结/转: a marked number, or a bare one followed by a separator or the end
_NUM = rf"(?:{_MARK}|(?=\d{{1,9}}(?:[\s:,、.。]|$))){_NUMBER}"
_SEP = r"[\s:,、.。]*"
_ACCEPT = re.compile(rf"受理\s*{_NUM}{_SEP}(.*)", re.S)
_RESOLVE = re.compile(rf"办结\s*{_NUM}{_SEP}(.*)", re.S)
_TRANSFER = re.compile(rf"转(?:给|交|办)?\s*{_NUM}{_SEP}(?:转?给|至|到)?\s*(.*?)\s*(?:代表)?[\s.。!]*", re.S)
_RELAY = re.compile(rf"{_REF}{_SEP}(.*)", re.S)
_BIND = re.compile(r"绑定\s*[:]?\s*(.*)", re.S)
_BARE = re.compile(r"(受理|办结|转)(?:#|编号)?[.。]?")


@dataclass(frozen=True)
class _Words:
    my_tickets: frozenset[str]
    help: frozenset[str]
    examples: dict[str, str]  # command word -> an example, for 「受理」 sent without a number


@lru_cache(maxsize=4)
def _words(texts: Texts) -> _Words:
    raw = texts.raw("deputy_words")
    return _Words(
        my_tickets=frozenset("".join(str(w).split()) for w in raw["my_tickets"]),
        help=frozenset(str(w).lower() for w in raw["help"]),
        examples={str(k): str(v) for k, v in raw["examples"].items()},
    )


# --- binding -----------------------------------------------------------------------------------
async def create_bind_code(services: Services, deputy_code: str) -> str:
    """A 6-digit code the deputy sends as 「绑定 <code>」; single use, valid 24 h. A code still valid
    for anyone (unused, unexpired) is never handed out again: another one is drawn."""
    now = services.clock.now()
    async with services.uow() as uow:
        if await uow.deputies.get(deputy_code) is None:
            raise DomainError("deputy_unknown", code=deputy_code)
        for _ in range(BIND_CODE_TRIES):
            code = f"{secrets.randbelow(10**6):06d}"
            if await uow.bind_codes.create(deputy_code, code, now + BIND_CODE_TTL, now):
                break
        else:
            raise RuntimeError(f"no free bind code after {BIND_CODE_TRIES} tries")
        await uow.commit()
    log.info("bind code created for deputy %s", deputy_code)
    return code


def parse_bind_command(text: str) -> str | None:
    """The code part of 「绑定 123456」 ("" when missing); None when the text is not a bind command."""
    match = _BIND.fullmatch(fold_width(text).strip())
    return match.group(1).strip() if match else None


async def _bind_failures(services: Services, openid: str) -> tuple[int, datetime | None]:
    """(failed attempts, end of their window) for this account; (0, None) when none count."""
    raw = await services.kv.get(keys.bind_failures(openid))
    try:
        count, _, until = (raw or "").partition(" ")
        ends = datetime.fromisoformat(until)
        return (int(count), ends) if ends > services.clock.now() else (0, None)
    except ValueError:
        return 0, None


async def _count_bind_failure(services: Services, openid: str) -> None:
    """One more failed attempt; the window starts at the first failure and lasts an hour."""
    now = services.clock.now()
    count, ends = await _bind_failures(services, openid)
    ends = ends or now + BIND_FAILURE_WINDOW
    ttl = max((ends - now).total_seconds(), 1.0)
    await services.kv.set(keys.bind_failures(openid), f"{count + 1} {ends.isoformat()}", ttl=ttl)


async def bind_deputy(services: Services, openid: str, code: str) -> str:
    """Link this WeChat account to the deputy the code was made for; returns the reply text.

    An account that got the code wrong BIND_FAILURES_MAX times within an hour is told to wait
    until the hour since its first failure is over (then it may try again); a successful bind
    clears the count."""
    texts = services.texts
    code = "".join(fold_width(code).split())
    if not code:
        return texts.get("bind_usage")
    failures, window_ends = await _bind_failures(services, openid)
    if failures >= BIND_FAILURES_MAX and window_ends is not None:
        minutes = max(1, -(-int((window_ends - services.clock.now()).total_seconds()) // 60))
        log.warning("bind attempts of %s stopped after %d failures", mask_openid(openid), failures)
        return texts.get("bind_too_many_tries", minutes=minutes)
    if not re.fullmatch(r"\d{6}", code):
        await _count_bind_failure(services, openid)
        return texts.get("bind_code_invalid")
    async with services.uow() as uow:
        deputy_code = await uow.bind_codes.consume(code, services.clock.now())
        deputy = await uow.deputies.get(deputy_code) if deputy_code else None
        if deputy is None:
            log.info("bind refused for %s", mask_openid(openid))
            await _count_bind_failure(services, openid)
            return texts.get("bind_code_invalid")
        await uow.deputies.bind(deputy.code, openid)
        open_count = len(await uow.tickets.list_open_for_deputy(deputy.code))
        station = await uow.stations.get(deputy.station_code)
        await uow.commit()
    await services.kv.batch(deletes=[keys.not_a_deputy(openid), *keys.all_bound_deputies(), keys.bind_failures(openid)])
    log.info("deputy %s bound to %s", deputy.code, mask_openid(openid))
    return texts.get(
        "bind_ok",
        name=deputy.name,
        station=station.name if station else deputy.station_code,
        open_hint=texts.get("bind_open_hint", count=open_count) if open_count else "",
    )


# --- ticket commands -----------------------------------------------------------------------------
# changes the ticket (its events tell the citizen and others) and returns the deputy's reply
_Operation = Callable[[UnitOfWork, Ticket], Awaitable[str]]


async def handle_deputy_message(services: Services, deputy: Deputy, text: str) -> str | None:
    """The reply to a bound deputy's message, or None when it is not a deputy command."""
    texts = services.texts
    original = text.strip()
    body = fold_width(original)  # commands are matched folded; the words a deputy writes go on as written
    compact = "".join(body.split())

    def said(match: re.Match[str], group: int) -> str:
        return original[match.start(group):match.end(group)].strip()

    words = _words(texts)
    if compact in words.my_tickets:
        return await _my_tickets(services, deputy)
    if compact.lower() in words.help:
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
        return texts.get("deputy_need_number", example=words.examples[match.group(1)])
    return None


def is_deputy_command(texts: Texts, text: str) -> bool:
    """True for the commands only a deputy can give (受理/办结/转 with a number, 我的工单).
    `#1024 ...` is not among them: citizens use it for their own tickets. Matched exactly as
    handle_deputy_message matches them."""
    body = fold_width(text.strip())
    compact = "".join(body.split())
    return (
        compact in _words(texts).my_tickets
        or any(p.fullmatch(body) for p in (_ACCEPT, _RESOLVE, _TRANSFER))
        or _BARE.fullmatch(compact) is not None
    )


def unbound_reply(services: Services, text: str) -> str | None:
    """For a sender who is not a bound deputy: the explanation when they give a deputy command
    (so nothing happens silently), else None."""
    return services.texts.get("deputy_not_bound") if is_deputy_command(services.texts, text) else None


async def _run(services: Services, deputy: Deputy, number: int, operation: _Operation) -> str:
    """Load the ticket and apply the change in one unit of work (its pushes are stored on
    commit, from the events the ticket recorded); a broken rule (wrong deputy, closed ticket...)
    is answered and changes nothing. When someone changed the ticket at the same moment, it is
    done once more on the fresh ticket."""

    async def attempt() -> str:
        return await _run_once(services, deputy, number, operation)

    return await retry_on_conflict(attempt, f"deputy {deputy.code} on #{number}")


async def _run_once(services: Services, deputy: Deputy, number: int, operation: _Operation) -> str:
    texts = services.texts
    async with services.uow() as uow:
        ticket = await uow.tickets.get(number)
        if ticket is None:
            return texts.get("deputy_ticket_not_found", number=number)
        try:
            reply = await operation(uow, ticket)
        except DomainError as error:
            log.info("deputy %s on #%d refused: %s", deputy.code, number, error.key)
            return texts.get(error.key, **error.params)
        await uow.tickets.save(ticket)
        await uow.commit()
    return reply


async def _accept(services: Services, deputy: Deputy, number: int, said: str = "") -> str:
    texts, now = services.texts, services.clock.now()
    if refusal := notify.relay_refusal(texts, number, said):  # nothing said: never refused
        return refusal

    async def operation(uow: UnitOfWork, ticket: Ticket) -> str:
        ticket.accept(deputy.code, now)
        if said:
            ticket.reply(deputy.code, said, now)
        return texts.get("deputy_accepted_ok", number=number, reach=await _citizen_reach(services, uow, ticket))

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
    if refusal := notify.relay_refusal(texts, number, said):
        return refusal

    async def operation(uow: UnitOfWork, ticket: Ticket) -> str:
        # replying before 受理 accepts the ticket too; the citizen gets the one reply message
        accepted = ticket.reply(deputy.code, said, now)
        return texts.get("deputy_replied_accepted_ok" if accepted else "deputy_replied_ok", number=number,
                         reach=await _citizen_reach(services, uow, ticket))

    return await _run(services, deputy, number, operation)


async def _resolve(services: Services, deputy: Deputy, number: int, result: str) -> str:
    texts, now = services.texts, services.clock.now()
    if refusal := notify.relay_refusal(texts, number, result):
        return refusal

    async def operation(uow: UnitOfWork, ticket: Ticket) -> str:
        ticket.resolve(deputy.code, result, now)
        return texts.get("deputy_resolved_ok", number=number, reach=await _citizen_reach(services, uow, ticket))

    return await _run(services, deputy, number, operation)


async def _transfer(services: Services, deputy: Deputy, number: int, target_code: str) -> str:
    texts, now = services.texts, services.clock.now()

    async def operation(uow: UnitOfWork, ticket: Ticket) -> str:
        target = await _find_deputy(uow, target_code)
        ticket.transfer(deputy.code, target, now)
        log.info("ticket #%d transferred from %s to %s", number, deputy.code, target.code)
        key = "deputy_transfer_ok" if target.openid else "deputy_transfer_unbound"
        return texts.get(key, number=number, deputy=target.name, reach=await _transfer_reach(services, uow, ticket, target))

    return await _run(services, deputy, number, operation)


async def _citizen_reach(services: Services, uow: UnitOfWork, ticket: Ticket) -> str:
    """What the reply may say of the push to the ticket's citizen (decided before the commit)."""
    return await channels.reach_text(services, ticket.citizen_openid, notify.STATUS,
                                     services.texts.get("reach_who_citizen"), uow=uow)


async def _transfer_reach(services: Services, uow: UnitOfWork, ticket: Ticket, target: Deputy) -> str:
    """The citizen's push, and the new deputy's when they bound WeChat (else the reply says so)."""
    texts = services.texts
    citizen = await channels.reach_outcome(services, ticket.citizen_openid, notify.STATUS, uow=uow)
    if not target.openid:
        return texts.get(f"reach_{citizen}", who=texts.get("reach_who_citizen"))
    other = await channels.reach_outcome(services, target.openid, notify.ASSIGNMENT, uow=uow)
    if other == citizen:
        return texts.get(f"reach_{citizen}", who=texts.get("reach_who_both"))
    return (texts.get(f"reach_{other}", who=texts.get("reach_who_other"))
            + texts.get(f"reach_{citizen}", who=texts.get("reach_who_citizen")))


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
        **notify.ticket_body(texts, ticket),  # details shortened there
    )


async def _my_tickets(services: Services, deputy: Deputy) -> str:
    """The deputy's open tickets, oldest first, at most MY_TICKETS_MAX lines and a count of the rest."""
    texts = services.texts
    note = await failures.failed_pushes_note(services, deputy)
    async with services.uow() as uow:
        tickets = await uow.tickets.list_open_for_deputy(deputy.code)
    if not tickets:
        return "\n".join(filter(None, [note, texts.get("deputy_my_tickets_empty")]))
    lines = [*filter(None, [note]), texts.get("deputy_my_tickets_head", count=len(tickets))]
    lines += [
        texts.get(
            "deputy_my_tickets_line",
            number=t.number,
            status=texts.get(f"deputy_status_{t.status.value}"),
            category=t.category,
            place=notify.shorten(t.place),
            summary=notify.shorten(t.summary),
        )
        for t in tickets[:MY_TICKETS_MAX]
    ]
    if len(tickets) > MY_TICKETS_MAX:
        lines.append(texts.get("deputy_my_tickets_more", count=len(tickets) - MY_TICKETS_MAX))
    lines.append(texts.get("deputy_my_tickets_foot"))
    return "\n".join(lines)
