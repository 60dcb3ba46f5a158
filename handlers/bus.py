"""The message bus: domain events in, their handlers run (cosmicpython's messagebus, with the
outbox guarantee).

Two kinds of handler, subscribed once in bot/bootstrap.py:
- in-transaction, `async def handler(event, uow)`: runs inside the unit of work that recorded the
  event, before its commit; what it stores (outbox messages) is committed with the change or not
  at all, and an exception from it aborts the commit;
- after-commit, `def/async def handler(event)`: runs once the commit succeeded (kick delivery,
  live updates); an exception is logged, never raised, because the change is already stored.

Use cases open `services.uow()` as before; the bus's unit of work collects the events their
aggregates recorded (UnitOfWork.collect_new_events) when they call `commit()`.

Exactly-once inbound effects: while a WeChat message is handled (`handling_inbound(key)`, entered
by the chat Dispatcher), the first commit that has effects (events or outbox messages) also
writes the ProcessedInbound record of that message's dedupe key, in the same transaction. A
crash leaves both or neither; a retry that finds the record is answered from it, and two
handlings of one message cannot both commit (the key is a primary key). Use cases know nothing of it.
Outbox messages stored by a handler of a ticket event carry that ticket's number.
"""
from __future__ import annotations

import inspect
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.core.clock import Clock, SystemClock
from bot.core.events import Event, MessagesQueued
from bot.core.inbound import ProcessedInbound
from bot.core.outbound import OutboxMessage
from bot.core.ports import UnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
InTransaction = Callable[[Any, UnitOfWork], Awaitable[None]]
AfterCommit = Callable[[Any], Awaitable[None] | None]

# in-transaction handlers may record further events; a loop means a bug, not more work
MAX_ROUNDS = 10


class MessageBus:
    def __init__(self) -> None:
        self._in_transaction: dict[type[Event], list[InTransaction]] = defaultdict(list)
        self._after_commit: dict[type[Event], list[AfterCommit]] = defaultdict(list)

    def subscribe(self, event_type: type[E], handler: Callable[[E, UnitOfWork], Awaitable[None]]) -> None:
        """Run `handler(event, uow)` in the transaction that recorded the event, in subscription order."""
        self._in_transaction[event_type].append(handler)

    def subscribe_after_commit(self, event_type: type[E], handler: Callable[[E], Awaitable[None] | None]) -> None:
        """Run `handler(event)` after the transaction that recorded the event was committed."""
        self._after_commit[event_type].append(handler)

    async def handle_in_transaction(self, events: list[Event], uow: UnitOfWork) -> None:
        for event in events:
            for handler in self._in_transaction[type(event)]:
                await handler(event, uow)

    async def handle_after_commit(self, events: list[Event]) -> None:
        for event in events:
            for handler in self._after_commit[type(event)]:
                try:
                    result = handler(event)
                    if inspect.isawaitable(result):
                        await result
                except Exception:  # noqa: BLE001 - the change is committed; say so, go on
                    log.exception("after-commit handler %s failed on %s", getattr(handler, "__name__", handler),
                                  type(event).__name__)


@dataclass
class InboundScope:
    """The inbound message being handled, and its record once a commit wrote it."""

    key: str
    recorded: ProcessedInbound | None = None


_inbound: ContextVar[InboundScope | None] = ContextVar("zhitongche_inbound", default=None)


@contextmanager
def handling_inbound(key: str) -> Iterator[InboundScope]:
    """Commits inside this block belong to the inbound message `key` (its dedupe key)."""
    scope = InboundScope(key)
    token = _inbound.set(scope)
    try:
        yield scope
    finally:
        _inbound.reset(token)


class _CountingOutbox:
    """The outbox repository, counting what its unit of work adds (for MessagesQueued), tagging
    pushes with the ticket of the event being handled, and collecting the events saved messages
    recorded (PushFailed)."""

    def __init__(self, inner: Any, uow: BusUnitOfWork) -> None:
        self.inner = inner
        self._uow = uow

    async def add(self, message: OutboxMessage) -> OutboxMessage:
        if message.ticket_number is None:
            message.ticket_number = self._uow.about_ticket
        stored = await self.inner.add(message)
        self._uow.messages_added += 1
        return stored

    async def save(self, message: OutboxMessage) -> None:
        self._uow.recorded += message.events
        message.events = []
        await self.inner.save(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class BusUnitOfWork:
    """A unit of work whose commit dispatches the recorded events through the bus; everything
    else (the repositories) is the storage's own unit of work."""

    def __init__(self, inner: UnitOfWork, bus: MessageBus, clock: Clock) -> None:
        self._inner = inner
        self._bus = bus
        self._clock = clock
        self._outbox: _CountingOutbox | None = None
        self.messages_added = 0
        self.recorded: list[Event] = []  # events of saved outbox messages
        self.about_ticket: int | None = None  # the ticket of the event whose handlers run now

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # stations, deputies, duty, tickets, citizens, bind_codes

    @property
    def outbox(self) -> _CountingOutbox:
        inner = self._inner.outbox  # the SQL unit of work makes new repositories on each enter
        if self._outbox is None or self._outbox.inner is not inner:
            self._outbox = _CountingOutbox(inner, self)
        return self._outbox

    async def __aenter__(self) -> BusUnitOfWork:
        await self._inner.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._inner.__aexit__(*exc)
        self.messages_added = 0
        self.recorded = []

    def collect_new_events(self) -> list[Event]:
        events, self.recorded = [*self.recorded, *self._inner.collect_new_events()], []
        return events

    async def commit(self) -> None:
        done: list[Event] = []
        for _ in range(MAX_ROUNDS):
            events = self.collect_new_events()
            if not events:
                break
            for event in events:
                self.about_ticket = getattr(event, "number", None)
                await self._bus.handle_in_transaction([event], self)
            self.about_ticket = None
            done += events
        else:
            raise RuntimeError("in-transaction event handlers keep recording events")
        record = await self._record_inbound(done)
        await self._inner.commit()
        scope = _inbound.get()
        if record is not None and scope is not None:
            scope.recorded = record
        if self.messages_added:
            done.append(MessagesQueued(self.messages_added))
            self.messages_added = 0
        await self._bus.handle_after_commit(done)

    async def _record_inbound(self, events: list[Event]) -> ProcessedInbound | None:
        """The inbound message's record, in this transaction when it is the first with effects."""
        scope = _inbound.get()
        if scope is None or scope.recorded is not None or not (events or self.messages_added):
            return None
        number = next((n for n in (getattr(e, "number", None) for e in events) if n is not None), None)
        record = ProcessedInbound(scope.key, self._clock.now(), ticket_number=number)
        await self._inner.processed_inbound.add(record)
        return record

    async def rollback(self) -> None:
        await self._inner.rollback()  # forgets the recorded events too
        self.messages_added = 0
        self.recorded = []


class BusUnitOfWorkFactory:
    """What use cases get as `services.uow`: units of work of `inner` that go through `bus`."""

    def __init__(self, inner: UnitOfWorkFactory, bus: MessageBus, clock: Clock | None = None) -> None:
        self.inner = inner
        self.bus = bus
        self.clock = clock or SystemClock()

    def __call__(self) -> BusUnitOfWork:
        return BusUnitOfWork(self.inner(), self.bus, self.clock)
