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
"""
from __future__ import annotations

import inspect
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bot.core.events import Event, MessagesQueued
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


class _CountingOutbox:
    """The outbox repository, counting what its unit of work adds (for MessagesQueued)."""

    def __init__(self, inner: Any, uow: BusUnitOfWork) -> None:
        self.inner = inner
        self._uow = uow

    async def add(self, message: OutboxMessage) -> OutboxMessage:
        stored = await self.inner.add(message)
        self._uow.messages_added += 1
        return stored

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class BusUnitOfWork:
    """A unit of work whose commit dispatches the recorded events through the bus; everything
    else (the repositories) is the storage's own unit of work."""

    def __init__(self, inner: UnitOfWork, bus: MessageBus) -> None:
        self._inner = inner
        self._bus = bus
        self._outbox: _CountingOutbox | None = None
        self.messages_added = 0

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

    def collect_new_events(self) -> list[Event]:
        return self._inner.collect_new_events()

    async def commit(self) -> None:
        done: list[Event] = []
        for _ in range(MAX_ROUNDS):
            events = self.collect_new_events()
            if not events:
                break
            await self._bus.handle_in_transaction(events, self)
            done += events
        else:
            raise RuntimeError("in-transaction event handlers keep recording events")
        await self._inner.commit()
        if self.messages_added:
            done.append(MessagesQueued(self.messages_added))
            self.messages_added = 0
        await self._bus.handle_after_commit(done)

    async def rollback(self) -> None:
        await self._inner.rollback()  # forgets the recorded events too
        self.messages_added = 0


class BusUnitOfWorkFactory:
    """What use cases get as `services.uow`: units of work of `inner` that go through `bus`."""

    def __init__(self, inner: UnitOfWorkFactory, bus: MessageBus) -> None:
        self.inner = inner
        self.bus = bus

    def __call__(self) -> BusUnitOfWork:
        return BusUnitOfWork(self.inner(), self.bus)
