"""Staff of the console and the API: accounts, what each may see, the audit log, internal notes.

Pure: imports nothing but the standard library. Hashing, sessions and tokens are the edge's job
(bot/console/auth.py); this module only says who may see what."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

MAX_FAILED_LOGINS = 5
LOGIN_WAIT = timedelta(minutes=5)


class StaffRole(StrEnum):
    DISTRICT = "district"  # the district people's congress office: everything
    TOWN = "town"  # one town's stations
    STATION = "station"  # one station


class StaffError(ValueError):
    """An account that cannot exist (e.g. a town account without a town). `key` names a text."""

    def __init__(self, key: str, **params: object) -> None:
        super().__init__(key, params)
        self.key = key
        self.params = params


class ActionRefused(StaffError):
    """A staff action that cannot be done as asked (handlers/staff_actions.py); `field` names the
    form field or API parameter at fault."""

    def __init__(self, key: str, field: str = "", **params: object) -> None:
        super().__init__(key, **params)
        self.field = field


class NotInScope(LookupError):
    """No such thing for this account: missing, or outside its scope (answered alike: 404)."""


@dataclass
class StaffAccount:
    username: str
    role: StaffRole
    password_hash: str
    name: str = ""
    town: str = ""  # set for town accounts (and kept for station accounts, for display)
    station: str = ""  # set for station accounts
    must_change_password: bool = True
    totp_secret: str = ""  # district accounts may add a second factor
    token_hash: str = ""  # the API bearer token, hashed; "" = none issued
    failed_logins: int = 0
    locked_until: datetime | None = None
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        self.role = StaffRole(self.role)
        if self.role is StaffRole.TOWN and not self.town:
            raise StaffError("staff_needs_town")
        if self.role is StaffRole.STATION and not self.station:
            raise StaffError("staff_needs_station")
        if self.totp_secret and self.role is not StaffRole.DISTRICT:
            raise StaffError("staff_totp_district_only")

    @property
    def scope(self) -> Scope:
        return Scope(self.role, self.town, self.station)

    # --- wrong passwords make the account wait ------------------------------------------------
    def is_locked(self, now: datetime) -> bool:
        return self.locked_until is not None and now < self.locked_until

    def login_failed(self, now: datetime) -> None:
        self.failed_logins += 1
        if self.failed_logins >= MAX_FAILED_LOGINS:
            self.locked_until = now + LOGIN_WAIT
            self.failed_logins = 0

    def login_succeeded(self) -> None:
        self.failed_logins = 0
        self.locked_until = None


class StationRef(Protocol):
    """What scope rules need of a station (the domain's Station has it)."""

    @property
    def code(self) -> str: ...
    @property
    def town(self) -> str: ...


@dataclass(frozen=True)
class Scope:
    role: StaffRole
    town: str = ""
    station: str = ""

    def sees_station(self, station: StationRef | None) -> bool:
        """A ticket in the district queue (no station row) is the district's alone."""
        if self.role is StaffRole.DISTRICT:
            return True
        if station is None:
            return False
        if self.role is StaffRole.TOWN:
            return station.town == self.town
        return station.code == self.station

    def sees_town(self, town: str) -> bool:
        return self.role is StaffRole.DISTRICT or (self.role is StaffRole.TOWN and town == self.town)

    def station_codes(self, stations: Iterable[StationRef]) -> list[str] | None:
        """The codes this scope may see, or None for "all" (district)."""
        if self.role is StaffRole.DISTRICT:
            return None
        return [s.code for s in stations if self.sees_station(s)]


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str  # staff username, or "cli"
    action: str  # e.g. staff_created, password_changed, note_added, token_issued
    target: str  # what it was done to: "staff:wang", "ticket:1001"
    before: str = ""
    after: str = ""


@dataclass(frozen=True)
class TicketNote:
    """Staff's internal note on a ticket: never sent to the citizen."""

    ticket_number: int
    at: datetime
    author: str
    text: str
    id: int | None = None


@dataclass(frozen=True)
class AuditPage:
    entries: Sequence[AuditEntry] = field(default_factory=tuple)
    total: int = 0


# --- ports ---------------------------------------------------------------------------------------
class StaffRepository(Protocol):
    async def get(self, username: str) -> StaffAccount | None: ...
    async def by_token_hash(self, token_hash: str) -> StaffAccount | None: ...
    async def list(self) -> Sequence[StaffAccount]: ...
    async def add(self, account: StaffAccount) -> None:
        """Raises StaffError("staff_exists") when the username is taken."""
        ...
    async def save(self, account: StaffAccount) -> None: ...


class AuditLogRepository(Protocol):
    async def add(self, entry: AuditEntry) -> None: ...
    async def page(self, offset: int, limit: int) -> AuditPage:
        """Newest first."""
        ...


class TicketNoteRepository(Protocol):
    async def add(self, note: TicketNote) -> TicketNote: ...
    async def for_ticket(self, ticket_number: int) -> Sequence[TicketNote]:
        """Oldest first."""
        ...
