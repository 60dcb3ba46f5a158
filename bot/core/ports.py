"""The ports the application talks through. Implementations live in storage/, bot/wechat/ and nlu/.

All datetimes are naive, in the district's local time (bot/core/clock.py).
"""
from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Protocol

from bot.core.broadcasts import Broadcast, BroadcastSend
from bot.core.events import Event
from bot.core.inbound import LateInbound, ProcessedInbound
from bot.core.live import LiveQuestion, LiveSession
from bot.core.outbound import UNDELIVERED, OutboxMessage, OutboxStatus, PushFailure
from bot.core.parse import ParseResult
from bot.core.people import Citizen, Deputy, DutyShift, Station
from bot.core.staff import AuditLogRepository, StaffRepository, TicketNoteRepository
from bot.core.receptions import Follow, Reception
from bot.core.tickets import Ticket, TicketBrief


class ConcurrentUpdate(Exception):
    """Someone else changed the same aggregate since it was read (the version check): nothing of
    this unit of work is stored. Try the whole operation again on fresh data."""


# --- fast shared state: Redis, or in-process memory for a single process ------------------------
class StoreUnavailable(Exception):
    """The key-value store cannot be reached (Redis down): nothing was read or written; try later."""


class LockTimeout(Exception):
    """KeyValueStore.lock waited its timeout: another holder kept the lock (busy, not broken)."""


@dataclass(frozen=True)
class Claim:
    """KeyValueStore.claim's answer."""

    owned: bool  # the key was absent and is ours now
    first_seen: bool  # owned, and seen_key was not marked: no earlier claim within seen_ttl
    epoch: float  # unix seconds: when this store's claims began


class KeyValueStore(Protocol):
    """Dialogue state, de-duplication keys, locks, the access_token. One contract suite covers
    the memory and Redis implementations (storage/kv.py). Every method may raise StoreUnavailable."""

    async def get(self, key: str) -> str | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """The values of `keys`, in order, in one round trip."""
        ...

    async def set(self, key: str, value: str, ttl: float | None = None) -> None: ...

    async def set_if_absent(self, key: str, value: str, ttl: float) -> bool:
        """True when the key was new (and is now set); False when it existed."""
        ...

    async def extend(self, key: str, value: str, ttl: float) -> bool:
        """Give `key` a new ttl if it still holds `value` (a lease its owner renews); else False."""
        ...

    async def delete(self, key: str) -> None: ...

    async def batch(self, *, sets: Sequence[tuple[str, str, float | None]] = (), deletes: Sequence[str] = (),
                    gets: Sequence[str] = ()) -> list[str | None]:
        """In one round trip, in this order: set each (key, value, ttl) of `sets` (as `set`),
        delete `deletes`, then return the values of `gets`, in order. Not atomic."""
        ...

    async def claim(self, key: str, value: str, ttl: float, *, seen_key: str, seen_ttl: float,
                    epoch_key: str) -> Claim:
        """In one step: set_if_absent(key, value, ttl); when that took it, mark `seen_key` for
        `seen_ttl` (and say whether it was marked before); read `epoch_key`, the unix time this
        store's claims began (set to now if missing: a new store, or one that came back empty)."""
        ...

    def lock(self, key: str, timeout: float = 10.0, *,
             read: Sequence[str] = ()) -> AbstractAsyncContextManager[list[str | None]]:
        """Mutual exclusion across all workers sharing the store; waits at most `timeout` s.
        Held on a short lease that the holder renews while alive: a dead holder blocks briefly.
        Gives the values of `read` as they were when it was taken (in the same round trip)."""
        ...

    async def close(self) -> None: ...


# --- relational storage: repositories behind one unit of work -----------------------------------
class StationRepository(Protocol):
    async def get(self, code: str, *, for_update: bool = False) -> Station | None:
        """`for_update`: the row stays locked until the unit of work ends (a console edit's
        compare-and-write: a concurrent edit waits, then finds the version changed)."""
        ...
    async def list(self) -> Sequence[Station]: ...
    async def upsert(self, station: Station) -> bool:
        """Insert or update by code; True when something changed."""
        ...


class DeputyRepository(Protocol):
    async def get(self, code: str, *, for_update: bool = False) -> Deputy | None: ...
    async def by_openid(self, openid: str) -> Deputy | None: ...
    async def list(self, station_code: str | None = None) -> Sequence[Deputy]: ...
    async def upsert(self, deputy: Deputy) -> bool:
        """Insert or update by code (the bound openid is kept); True when something changed."""
        ...
    async def bind(self, code: str, openid: str) -> None: ...
    async def unbind(self, code: str) -> str | None:
        """Forget the deputy's WeChat account; returns the openid it had (None: none was bound)."""
        ...


class DutyRepository(Protocol):
    async def list(self, station_code: str | None = None) -> Sequence[DutyShift]: ...
    async def upsert(self, shift: DutyShift) -> bool:
        """Keyed by (station_code, deputy_code, day, start); True when something changed."""
        ...


class TicketRepository(Protocol):
    async def add(self, ticket: Ticket) -> Ticket:
        """Store a new ticket; its `number` is assigned here (unique, increasing) and returned."""
        ...
    async def get(self, number: int) -> Ticket | None: ...
    async def save(self, ticket: Ticket) -> None:
        """Persist status, deputy, station, rating and any new timeline entries/attachments.
        Raises ConcurrentUpdate (here or at commit) when the ticket changed since it was read."""
        ...
    async def list_for_citizen(self, openid: str) -> Sequence[Ticket]: ...
    async def briefs_for_citizen(self, openid: str) -> Sequence[TicketBrief]:
        """The tickets the citizen filed or follows (another asker of a merged live question),
        newest first."""
        ...
    async def list_open_for_deputy(self, deputy_code: str) -> Sequence[Ticket]: ...
    async def open_counts(self, deputy_codes: Sequence[str]) -> dict[str, int]: ...
    async def waiting(self, station_code: str | None = None) -> Sequence[Ticket]:
        """Open tickets with no deputy assigned (status filed), oldest first."""
        ...
    async def awaiting_rating(self, openid: str) -> Ticket | None:
        """The citizen's newest resolved ticket that has no rating yet."""
        ...


class CitizenRepository(Protocol):
    async def get(self, openid: str) -> Citizen | None: ...
    async def save(self, citizen: Citizen) -> None: ...
    async def note_scene(self, openid: str, scene: str, started_at: datetime | None) -> None:
        """The chat scene last entered and when ("" and None: left), the rest of the row as it
        is; a citizen without a row gets one only for a scene entered. One statement."""
        ...


class OutboxRepository(Protocol):
    async def add(self, message: OutboxMessage) -> OutboxMessage: ...
    async def due(self, now: datetime, limit: int = 50) -> Sequence[OutboxMessage]:
        """Pending messages whose next_attempt_at is due (or unset), oldest first."""
        ...
    async def next_due(self) -> datetime | None:
        """The earliest next_attempt_at of the pending messages that have one (a claim running out,
        a retry), or None."""
        ...
    async def extend_claim(self, ids: Sequence[int], claimed_until: datetime, until: datetime) -> list[int]:
        """Renew a delivery claim: pending messages whose next_attempt_at is still `claimed_until`
        get `until`; returns their ids (a claim another worker took over is not renewed)."""
        ...
    async def held_for(self, openid: str) -> Sequence[OutboxMessage]: ...
    async def save(self, message: OutboxMessage) -> None: ...
    async def list(self, statuses: Sequence[OutboxStatus] = UNDELIVERED) -> Sequence[OutboxMessage]: ...
    async def record_failure(self, failure: PushFailure) -> None: ...
    async def failures(self, station_code: str | None = None, *, untold: bool = False) -> Sequence[PushFailure]:
        """Pushes that failed for good, newest first: of one station (None: all), or only those no
        deputy was shown yet."""
        ...
    async def mark_told(self, message_ids: Sequence[int], at: datetime) -> None: ...


class ProcessedInboundRepository(Protocol):
    async def get(self, key: str) -> ProcessedInbound | None: ...
    async def add(self, record: ProcessedInbound) -> None:
        """Raises (on commit at the latest) when the key is already recorded."""
        ...
    async def set_reply(self, key: str, reply: str) -> None: ...
    async def prune(self, before: datetime) -> int:
        """Forget records handled before `before` (WeChat stopped retrying long ago); how many."""
        ...


class LateInboundRepository(Protocol):
    async def keep(self, entry: LateInbound) -> None:
        """Store it unless its key is kept already (then nothing changes)."""
        ...
    async def due(self, now: datetime, limit: int) -> Sequence[LateInbound]:
        """Kept messages whose next_try_at has come, oldest first; on PostgreSQL locked for this
        transaction (others skip them)."""
        ...
    async def save(self, entry: LateInbound) -> None:
        """Its next_try_at and attempts."""
        ...
    async def forget(self, key: str) -> None: ...


class BindCodeRepository(Protocol):
    async def create(self, deputy_code: str, code: str, expires_at: datetime, now: datetime) -> bool:
        """Store a new code for the deputy; False (and nothing changes) when the code is still
        valid (unused and unexpired at `now`) for anyone. A used or expired code may be reused."""
        ...
    async def consume(self, code: str, now: datetime) -> str | None:
        """The deputy code for a valid unused code (and mark it used); None otherwise."""
        ...


class ReceptionRepository(Protocol):
    async def add(self, reception: Reception) -> Reception:
        """Store a new reception; its `id` is assigned here and returned."""
        ...
    async def get(self, reception_id: int) -> Reception | None: ...
    async def by_key(self, station_code: str, day: date, start: time) -> Reception | None: ...
    async def save(self, reception: Reception) -> None: ...
    async def between(self, first: date, last: date | None = None,
                      station_codes: Sequence[str] | None = None) -> Sequence[Reception]:
        """Receptions (cancelled too) from `first` to `last` (open: no end), by date and start."""
        ...


class FollowRepository(Protocol):
    async def follow(self, follow: Follow) -> bool:
        """Follow (or follow again); False when it was already active."""
        ...
    async def unfollow(self, openid: str, station_codes: Sequence[str] | None = None) -> list[str]:
        """Stop following these stations (None: all); the station codes that were active."""
        ...
    async def of_citizen(self, openid: str) -> Sequence[Follow]:
        """The citizen's active follows."""
        ...
    async def followers(self, station_codes: Sequence[str]) -> Sequence[Follow]:
        """Active follows of these stations, by openid."""
        ...
    async def untagged(self, limit: int = 500, station_codes: Sequence[str] | None = None) -> Sequence[Follow]:
        """Follows (active or stopped) whose WeChat tag does not mirror them yet."""
        ...
    async def mark_tagged(self, openid: str, station_code: str) -> None: ...
    async def town_tag(self, town: str) -> int | None:
        """The WeChat user tag that mirrors the follows of this town's stations."""
        ...
    async def set_town_tag(self, town: str, tag_id: int) -> None: ...


class BroadcastRepository(Protocol):
    async def add(self, broadcast: Broadcast, sends: Sequence[BroadcastSend]) -> Broadcast:
        """Store the broadcast and its planned mass sends (their broadcast_id is set here)."""
        ...
    async def get(self, broadcast_id: int) -> Broadcast | None: ...
    async def recent(self, station_codes: Sequence[str] | None = None, towns: Sequence[str] | None = None,
                     limit: int = 50, offset: int = 0) -> Sequence[Broadcast]:
        """Newest first; those to these stations or towns (both None: all)."""
        ...

    async def sends(self, broadcast_id: int) -> Sequence[BroadcastSend]: ...
    async def claim(self, broadcast_id: int | None, now: datetime, until: datetime) -> BroadcastSend | None:
        """Take the next send (of this broadcast; None: of any) that is pending, or claimed by a
        sender whose lease ran out; it is claimed until `until`. Two senders never get the same send."""
        ...
    async def save_send(self, send: BroadcastSend) -> None: ...
    async def mass_used(self, openids: Sequence[str], month: str) -> dict[str, int]:
        """Mass messages each user received in `month` ('2026-12'); absent: none."""
        ...
    async def count_mass(self, openids: Sequence[str], month: str) -> None:
        """One more mass message for each of them in `month`."""
        ...


class ReminderRepository(Protocol):
    async def claim(self, reception_id: int, kind: str, openids: Sequence[str], at: datetime) -> bool:
        """Record that reminder (reception, kind) goes to `openids` now; False when it was already
        recorded (by this or another worker): the work is done, send nothing."""
        ...
    async def told(self, reception_id: int) -> Sequence[str]:
        """Everyone a reminder of this reception went to, each once, in order."""
        ...


class LiveRepository(Protocol):
    """Live-stream sessions and their questions (bot/core/live.py). Sessions and questions handed
    out here record events the unit of work collects. save_question raises ConcurrentUpdate when
    the question changed since it was read (two hosts at once)."""

    async def add_session(self, session: LiveSession) -> LiveSession:
        """Store a new session; its `id` (and, when empty, its default keyword) is assigned here."""
        ...
    async def get_session(self, session_id: int, *, share_lock: bool = False) -> LiveSession | None:
        """`share_lock`: hold the row against a concurrent end until this transaction ends (a
        question is stored before the session ends, or sees it ended)."""
        ...
    async def save_session(self, session: LiveSession) -> None: ...
    async def session_by_keyword(self, keyword: str) -> LiveSession | None:
        """The newest session with this keyword."""
        ...
    async def sessions(self, station_codes: Sequence[str] | None = None) -> Sequence[LiveSession]:
        """Newest first."""
        ...
    async def due_to_end(self, now: datetime) -> Sequence[LiveSession]:
        """Sessions not ended whose ends_at has come."""
        ...
    async def unfiled(self, now: datetime) -> Sequence[LiveSession]:
        """Sessions ended (or past ends_at) whose follow-ups were not filed yet."""
        ...
    async def claim_filing(self, session_id: int, at: datetime) -> bool:
        """Mark the session's follow-ups filed at `at`; False when someone already did."""
        ...
    async def add_question(self, question: LiveQuestion) -> LiveQuestion: ...
    async def get_question(self, question_id: int) -> LiveQuestion | None: ...
    async def save_question(self, question: LiveQuestion) -> None: ...
    async def questions(self, session_id: int) -> Sequence[LiveQuestion]:
        """Every question of the session, oldest first."""
        ...
    async def last_question(self, session_id: int, openid: str) -> LiveQuestion | None: ...
    async def add_followers(self, ticket_number: int, openids: Sequence[str]) -> None:
        """These citizens follow the ticket (askers of a merged live question besides its filer);
        adding one again changes nothing."""
        ...
    async def followers(self, ticket_number: int) -> Sequence[str]:
        """Who follows the ticket, in the order they were added."""
        ...
    async def followed_by(self, openid: str) -> Sequence[int]:
        """The tickets this citizen follows, lowest number first."""
        ...


class LiveSubscription(Protocol):
    async def next(self, timeout: float) -> str | None:
        """The next payload, or None when none came within `timeout` seconds."""
        ...


class LiveFeed(Protocol):
    """Live updates of a session's queue to every host screen, across workers (Redis pub/sub;
    in-process for the memory store). Best effort: the queue itself is in the database."""

    async def publish(self, session_id: int, payload: str) -> None: ...

    def listen(self, session_id: int) -> AbstractAsyncContextManager[LiveSubscription]:
        """Subscribed on enter: the payloads published from then on."""
        ...


class UnitOfWork(Protocol):
    """`async with uow:` opens one transaction; `await uow.commit()` ends it; leaving without
    commit rolls back."""

    stations: StationRepository
    deputies: DeputyRepository
    duty: DutyRepository
    tickets: TicketRepository
    citizens: CitizenRepository
    outbox: OutboxRepository
    bind_codes: BindCodeRepository
    staff: StaffRepository
    audit: AuditLogRepository
    notes: TicketNoteRepository
    processed_inbound: ProcessedInboundRepository
    late_inbound: LateInboundRepository
    receptions: ReceptionRepository
    follows: FollowRepository
    broadcasts: BroadcastRepository
    reminders: ReminderRepository
    live: LiveRepository

    async def __aenter__(self) -> UnitOfWork: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def commit(self) -> None:
        """Raises ConcurrentUpdate when a saved ticket was changed by someone else meanwhile."""
        ...
    async def rollback(self) -> None: ...
    def collect_new_events(self) -> list[Event]:
        """The domain events recorded by the aggregates this unit of work handed out, each once."""
        ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...


# --- WeChat outbound -----------------------------------------------------------------------------
class WeChatAPIError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg


class WeChatGateway(Protocol):
    """Every call to the WeChat API goes through here (base URL configurable, token included)."""

    async def send_text(self, openid: str, text: str) -> None:
        """Customer-service text message. Raises WeChatAPIError."""
        ...

    async def send_template(self, openid: str, template_id: str, data: dict[str, str], url: str = "") -> None: ...

    async def send_subscribe(self, openid: str, template_id: str, data: dict[str, str], page: str = "") -> None:
        """订阅通知 (message/subscribe/bizsend); 43101: the user has no subscription left."""
        ...

    async def create_qrcode(self, scene: str) -> bytes:
        """A permanent QR code with this scene string, as PNG bytes."""
        ...


class MassGateway(Protocol):
    """WeChat's mass messages and user tags (the broadcasts)."""

    async def mass_send(self, openids: Sequence[str], text: str, clientmsgid: str) -> str:
        """message/mass/send to 2..10,000 openids; the msg_id. A repeated clientmsgid raises
        WeChatAPIError(CLIENTMSGID_EXISTS)."""
        ...

    async def mass_send_tag(self, tag_id: int, text: str, clientmsgid: str) -> str: ...

    async def create_tag(self, name: str) -> int: ...

    async def tag_users(self, tag_id: int, openids: Sequence[str]) -> None:
        """tags/members/batchtagging: at most 50 openids a call."""
        ...

    async def untag_users(self, tag_id: int, openids: Sequence[str]) -> None: ...

    async def send_subscribe(self, openid: str, template_id: str, data: dict[str, str], page: str = "") -> None:
        """订阅通知 (a broadcast's reception announcement); 43101: no subscription left."""
        ...


CLIENTMSGID_EXISTS = 45065  # WeChat: a mass send with this clientmsgid was already made


# --- NLU -----------------------------------------------------------------------------------------
class NLU(Protocol):
    async def parse(self, text: str) -> ParseResult:
        """Built from Rasa's /model/parse shape plus `category` and `category_ranking`."""
        ...

    async def learn_places(self, stations: Sequence[Station]) -> None:
        """From now on recognise these stations' towns and villages/communities as place
        entities, beside the places the engine was built with (a later call replaces them)."""
        ...
