"""A delivery pass's claim on its messages: taken in one short transaction (PostgreSQL: SELECT …
FOR UPDATE SKIP LOCKED), renewed every CLAIM_LEASE / 3 while the pass sends."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from bot.core.outbound import OutboxMessage
from handlers.services import Services

log = logging.getLogger(__name__)

# A pass's claim on its messages (next_attempt_at moved ahead), renewed while it sends: a worker
# that dies mid-pass leaves them due again within this.
CLAIM_LEASE = timedelta(seconds=6)


class Claim:
    """This pass's lease on its messages: taken in one transaction, renewed while sending."""

    def __init__(self, services: Services, due: list[tuple[OutboxMessage, datetime | None]], until: datetime) -> None:
        self.services = services
        self.due = due  # (message, its due time before the claim)
        self.until = until
        self._open = {m.id for m, _ in due}  # claimed, not yet done, still ours

    @classmethod
    async def take(cls, services: Services, limit: int) -> Claim:
        now = services.clock.now()
        until = now + CLAIM_LEASE
        async with services.uow() as uow:
            due = list(await uow.outbox.due(now, limit))  # PostgreSQL: FOR UPDATE SKIP LOCKED
            claimed = []
            for message in due:
                claimed.append((message, message.next_attempt_at))
                message.next_attempt_at = until
                await uow.outbox.save(message)
            await uow.commit()
        return cls(services, claimed, until)

    def holds(self, message: OutboxMessage) -> bool:
        return message.id in self._open

    def done(self, message: OutboxMessage) -> None:
        self._open.discard(message.id)

    async def keep(self) -> None:
        """Renew the lease of the messages not done yet, every CLAIM_LEASE / 3, until cancelled."""
        while True:
            await asyncio.sleep(CLAIM_LEASE.total_seconds() / 3)
            if not self._open:
                continue
            until = self.services.clock.now() + CLAIM_LEASE
            try:
                async with self.services.uow() as uow:
                    kept = await uow.outbox.extend_claim(sorted(self._open), self.until, until)  # type: ignore[arg-type]
                    await uow.commit()
            except Exception:  # noqa: BLE001 - the database blinked: try again next round
                log.warning("outbox: renewing a delivery claim failed", exc_info=True)
                continue
            if self._open - set(kept):
                log.warning("outbox: %d claimed messages were taken over", len(self._open - set(kept)))
            self._open &= set(kept)
            self.until = until
