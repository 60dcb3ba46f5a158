"""What every use case gets: the ports, the clock, settings and texts (built in bot/bootstrap.py),
and the small helpers use cases share."""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bot.core.clock import Clock
from bot.core.ports import NLU, ConcurrentUpdate, KeyValueStore, UnitOfWorkFactory
from bot.core.tickets import CITIZEN, Attachment
from bot.settings import Settings
from bot.texts import Texts
from handlers.read_ahead import ReadAheadKV

log = logging.getLogger(__name__)

T = TypeVar("T")


def _no_kick() -> None:
    return None


@dataclass
class Services:
    uow: UnitOfWorkFactory  # its commits dispatch domain events (handlers/bus.py)
    kv: ReadAheadKV  # the store, with the message's reads read ahead (the dispatcher's)
    nlu: NLU
    clock: Clock
    settings: Settings
    texts: Texts
    # delivery starts at once: the bus calls it after a commit that stored outbox messages
    kick_delivery: Callable[[], None] = field(default=_no_kick)


@dataclass
class ReportDraft:
    """A completed report form, ready to become a ticket."""

    citizen_openid: str
    category: str
    summary: str  # what happened, one line
    place: str  # as the citizen named it (town / village / community), or a location label
    details: str = ""
    place_names: tuple[str, ...] = ()  # the NLU's canonical names of that place (routing only)
    town: str = ""  # when known (entity, location, QR station)
    qr_station_code: str | None = None  # station bound by the scanned QR code
    attachments: list[Attachment] = field(default_factory=list)
    phone: str | None = None
    share_contact: bool = False  # the citizen agreed the deputy may see the phone number
    filed_by: str = CITIZEN  # a staff username when staff filed it for a visitor
    reception_id: int | None = None  # the reception day where a visitor came


async def lookup_remembering_misses(kv: KeyValueStore, miss_key: str, ttl: float,
                                    load: Callable[[], Awaitable[T | None]]) -> T | None:
    """`load()`, except that a miss is remembered under `miss_key` for `ttl` seconds: most senders
    are citizens with no deputy account and no scanned station, and each message should not ask
    the database again. Whoever makes the answer change deletes `miss_key`."""
    if await kv.get(miss_key) is not None:
        return None
    found = await load()
    if found is None:
        await kv.set(miss_key, "1", ttl=ttl)
    return found


async def retry_on_conflict(operation: Callable[[], Awaitable[T]], what: str) -> T:
    """Run `operation`, which opens and commits its own unit of work; when its ticket save failed
    because someone changed the same ticket at the same time (ConcurrentUpdate), run it once
    more, on fresh data. A second conflict is raised."""
    try:
        return await operation()
    except ConcurrentUpdate:
        log.warning("concurrent change while %s; trying once more", what)
    return await operation()
