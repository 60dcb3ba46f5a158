"""Delivering the outbox within WeChat's messaging rules, with retries; never dropping a message
that still applies.

Per recipient (citizen or deputy: both are followers of the account), the way is chosen by
bot.core.reach.route from the facts handlers/channels.py gathers (the windows, 订阅通知 grants):
- inside a window: customer-service text; otherwise a template message when the message has a
  template key with settings.template_id(key); otherwise a 订阅通知 when settings.subscribe_id(key)
  is set and the user has a subscription left; otherwise the message is `held` until the user
  writes again: keys.held_mark marks that there is something to release, and each delivery run
  also releases held messages of users whose window is open (should a mark be lost).
- Before it goes out, a message about a ticket is checked against the ticket (reach.stale_reason):
  one that no longer applies (transferred away, closed, already accepted) is `dropped`, with the
  reason in last_error (`zhitongche outbox` shows it), not delivered stale.
- Template and 订阅通知 fields are checked against WeChat's limits (bot.core.wechat_fields) first.
- Errors: 45015 (window expired) / 45047 (quota used up) mean WeChat counts the window closed:
  we mark it closed for that user and take the next way at once, no blind retry; 43101 (no
  subscription left) likewise for 订阅通知. 43004 (the user no longer follows us) holds the message.
  Anything else is retried with exponential back-off (RETRY_BASE doubling up to RETRY_MAX);
  after MAX_ATTEMPTS it is `failed` for good and records PushFailed: its station's staff see it
  (outbox.failures) and the next on-duty deputy is told in 我的工单 (handlers/failures.py).
- Claims: a pass claims its due messages in one short transaction (PostgreSQL: SELECT … FOR
  UPDATE SKIP LOCKED, so two workers never take the same rows) by moving their due time
  CLAIM_LEASE ahead; while the pass sends, the lease is renewed every CLAIM_LEASE / 3 for the
  messages not yet done (only while still ours: extend_claim checks the value). A worker killed
  mid-pass leaves its messages due again within CLAIM_LEASE.
- Concurrency: recipients are served concurrently, at most SEND_CONCURRENCY at once, so a hung
  WeChat call (bounded by ZTC_WECHAT_TIMEOUT) holds up only its own recipient; one recipient's
  messages go one after another, in order, and once one is deferred the later ones wait for the
  next pass so they do not overtake it.
- Each message is marked sent in its own short transaction right after WeChat accepted it.

The one at-least-once window: WeChat accepted a message but the process died (or the call timed
out after WeChat had taken it) before it was marked sent; the message is sent again once its
claim runs out. Customer-service and template messages take no idempotency key; mass sends
(broadcasts) must pass `clientmsgid`, which makes WeChat drop a repeated call.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from enum import StrEnum

from bot.core import keys
from bot.core.outbound import Channel, OutboxMessage, OutboxStatus
from bot.core.ports import LockTimeout, StoreUnavailable, WeChatAPIError, WeChatGateway
from bot.core.privacy import mask_openid
from bot.core.reach import Route, stale_reason
from bot.core.wechat_fields import problems
from handlers import channels, held
from handlers.channels import CS_QUOTA, CS_WINDOW, Window, window_state, window_value
from handlers.claims import CLAIM_LEASE, Claim
from handlers.held import record_inbound, release_held, release_reachable
from handlers.services import Services

# also this module's API (tests, bootstrap)
__all__ = ["CLAIM_LEASE", "CS_QUOTA", "CS_WINDOW", "DeliveryWorker", "deliver_due", "record_inbound",
           "release_held", "retry_delay", "window_state"]

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)

WINDOW_CLOSED_ERRORS = frozenset({45015, 45047})  # response out of time limit / count limit
NOT_FOLLOWING_ERRORS = frozenset({43004})  # require subscribe
NO_SUBSCRIPTION_ERRORS = frozenset({43101})  # user refused / used up the 订阅通知
# reasons stored in last_error (bot/cli_output.py words them in Chinese)
NO_WAY = "outside the messaging window, no template configured"
NOT_FOLLOWING = "not following the account"
STALE = "stale"
FIELDS_INVALID = "template fields invalid"

SEND_CONCURRENCY = 8  # recipients served at once by one worker
PUSH_LOCK_WAIT = 1.0  # seconds a pass waits for another one sending to the same user, then leaves it


# --- delivery --------------------------------------------------------------------------------------
async def deliver_due(services: Services, gateway: WeChatGateway, limit: int = 50) -> int:
    """Deliver (or hold, or schedule a retry for) up to `limit` due messages; returns how many
    were sent."""
    return (await _deliver_pass(services, gateway, limit)).sent


@dataclass
class _PassResult:
    due: int = 0
    sent: int = 0
    changed: int = 0  # sent, held, retried or failed: anything but "skipped to keep order"


async def _deliver_pass(services: Services, gateway: WeChatGateway, limit: int) -> _PassResult:
    result = _PassResult()
    claim = await Claim.take(services, limit)
    result.due = len(claim.due)
    by_recipient: dict[str, list[tuple[OutboxMessage, datetime | None]]] = {}
    for message, due_at in claim.due:
        by_recipient.setdefault(message.recipient_openid, []).append((message, due_at))
    slots = asyncio.Semaphore(SEND_CONCURRENCY)
    skipped: list[tuple[OutboxMessage, datetime | None]] = []

    async def send_in_order(queue: list[tuple[OutboxMessage, datetime | None]]) -> None:
        for position, (message, _) in enumerate(queue):
            if not claim.holds(message):  # the lease ran out and another worker took it
                return
            done = await _deliver_one(services, gateway, message)
            claim.done(message)
            result.changed += 1
            if done is _Done.STOPPED:  # the recipient's later messages must not overtake this one
                skipped.extend(queue[position + 1:])
                return
            result.sent += done is _Done.SENT

    async def serve(queue: list[tuple[OutboxMessage, datetime | None]]) -> None:
        async with slots, contextlib.AsyncExitStack() as recipient_lock:
            try:
                await recipient_lock.enter_async_context(
                    services.kv.lock(keys.push_lock(queue[0][0].recipient_openid), timeout=PUSH_LOCK_WAIT))
            except LockTimeout:  # another pass (or worker) is sending to this user: after it
                skipped.extend(queue)
                return
            await send_in_order(queue)

    renewing = asyncio.get_running_loop().create_task(claim.keep())
    try:
        await asyncio.gather(*(serve(queue) for queue in by_recipient.values()))
    finally:
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
    if skipped:
        # back to due for the next pass, claim released
        async with services.uow() as uow:
            for message, due_at in skipped:
                if claim.holds(message):
                    message.next_attempt_at = due_at
                    await uow.outbox.save(message)
            await uow.commit()
    return result


class _Done(StrEnum):
    SENT = "sent"
    DROPPED = "dropped"  # no longer applies: the recipient's next message may go
    STOPPED = "stopped"  # held, retried or failed: the recipient's later messages wait


async def _deliver_one(services: Services, gateway: WeChatGateway, message: OutboxMessage) -> _Done:
    """One message, the way channels.reach chooses; a closed window or a used-up subscription
    rules that way out and the next is taken at once."""
    openid = message.recipient_openid
    if reason := await _stale(services, message):
        await _drop(services, message, reason)
        return _Done.DROPPED
    for _ in range(3):  # custom → template/subscribe → held: each refusal rules one way out
        chosen = await channels.reach(services, openid, message.template_key)
        if chosen.route is Route.UNREACHABLE:
            await _unreachable(services, message, NOT_FOLLOWING)
            return _Done.STOPPED
        if chosen.route is Route.HELD:
            await held.hold(services, message, NO_WAY)
            return _Done.STOPPED
        try:
            if chosen.route is Route.CUSTOM:
                await gateway.send_text(openid, message.text)
            else:
                data = dict(message.template_data)
                if bad := problems(data, template=chosen.route is Route.TEMPLATE):
                    await _fail(services, message, f"{FIELDS_INVALID}: {'; '.join(bad)}")
                    return _Done.STOPPED
                if chosen.route is Route.TEMPLATE:
                    await gateway.send_template(openid, chosen.channels.template_id, data)
                else:
                    await gateway.send_subscribe(openid, chosen.channels.subscribe_id, data)
        except WeChatAPIError as error:
            if error.errcode in NOT_FOLLOWING_ERRORS:
                await _unreachable(services, message, str(error))
                return _Done.STOPPED
            if chosen.route is Route.CUSTOM and error.errcode in WINDOW_CLOSED_ERRORS:
                log.info("window closed for %s (%s)", mask_openid(openid), error.errcode)
                await held.close_window(services, openid)
                continue  # WeChat says the window is shut: believe it, take the next way
            if chosen.route is Route.SUBSCRIBE and error.errcode in NO_SUBSCRIPTION_ERRORS:
                await channels.set_subscription(services, openid, chosen.channels.subscribe_id, 0)
                continue
            await _retry(services, message, str(error))
            return _Done.STOPPED
        except Exception as error:  # network, timeout...: a temporary failure
            await _retry(services, message, f"{type(error).__name__}: {error}")
            return _Done.STOPPED
        if chosen.route is Route.SUBSCRIBE:
            await channels.use_subscription(services, openid, chosen.channels.subscribe_id)
        await _mark_sent(services, message, _CHANNEL[chosen.route], chosen.window)
        return _Done.SENT
    await held.hold(services, message, NO_WAY)
    return _Done.STOPPED


_CHANNEL = {Route.CUSTOM: Channel.CUSTOMER_SERVICE, Route.TEMPLATE: Channel.TEMPLATE, Route.SUBSCRIBE: Channel.SUBSCRIBE}


async def _stale(services: Services, message: OutboxMessage) -> str | None:
    """Why a message about a ticket no longer applies (reach.stale_reason), or None."""
    if message.ticket_number is None or not message.purpose:
        return None
    async with services.uow() as uow:
        ticket = await uow.tickets.get(message.ticket_number)
        deputy = await uow.deputies.by_openid(message.recipient_openid)
    return stale_reason(message.purpose, ticket, deputy.code if deputy else None)


async def _unreachable(services: Services, message: OutboxMessage, reason: str) -> None:
    """Held (a user who left may follow again: it goes then), and staff are told once."""
    message.unreachable(reason, services.clock.now())
    await held.hold(services, message, message.last_error)


async def _drop(services: Services, message: OutboxMessage, reason: str) -> None:
    message.status = OutboxStatus.DROPPED
    message.last_error = f"{STALE}: {reason}"
    message.next_attempt_at = None
    async with services.uow() as uow:
        await uow.outbox.save(message)
        await uow.commit()
    log.info("outbox %s to %s dropped: %s", message.id, mask_openid(message.recipient_openid), reason)


async def _mark_sent(services: Services, message: OutboxMessage, channel: Channel, window: Window | None) -> None:
    now = services.clock.now()
    message.status = OutboxStatus.SENT
    message.channel = channel
    message.sent_at = now
    message.attempts += 1
    message.last_error = ""
    message.next_attempt_at = None
    async with services.uow() as uow:
        await uow.outbox.save(message)
        await uow.commit()
    if window is not None:
        openid = message.recipient_openid
        if window.kind == "message":
            ttl = CS_WINDOW - (now - window.since_or_until)
            await services.kv.set(keys.message_window(openid), window_value(window.since_or_until, window.sent + 1),
                                  ttl=max(ttl.total_seconds(), 1.0))
        else:
            ttl = max((window.since_or_until - now).total_seconds(), 1.0) * 2
            await services.kv.set(keys.burst_window(openid), window_value(window.since_or_until, window.sent + 1), ttl=ttl)
    log.info("outbox %s sent to %s by %s", message.id, mask_openid(message.recipient_openid), channel)


def retry_delay(attempts: int) -> timedelta:
    """Back-off after the n-th failed attempt: 30 s, 1 min, 2 min, 4 min... at most an hour."""
    return min(RETRY_BASE * (2 ** max(attempts - 1, 0)), RETRY_MAX)


async def _fail(services: Services, message: OutboxMessage, error: str) -> None:
    """No use trying again (our payload breaks WeChat's rules): failed now, a person is told."""
    await _retry(services, message, error, last=True)


async def _retry(services: Services, message: OutboxMessage, error: str, *, last: bool = False) -> None:
    now = services.clock.now()
    message.attempts += 1
    message.last_error = error[:500]
    if last or message.attempts >= MAX_ATTEMPTS:
        message.give_up(error, now)  # records PushFailed: a person hears of it
        log.error("outbox %s to %s failed after %d attempts: %s",
                  message.id, mask_openid(message.recipient_openid), message.attempts, error)
    else:
        message.next_attempt_at = now + retry_delay(message.attempts)
        log.warning("outbox %s to %s attempt %d failed, retry at %s: %s", message.id,
                    mask_openid(message.recipient_openid), message.attempts, message.next_attempt_at, error)
    async with services.uow() as uow:
        await uow.outbox.save(message)
        await uow.commit()


# --- the worker ----------------------------------------------------------------------------------
class DeliveryWorker:
    """Runs delivery passes when kicked (the bus calls services.kick_delivery after a commit that
    stored messages) and every `interval` seconds anyway, so retries and anything missed still go out."""

    def __init__(self, services: Services, gateway: WeChatGateway, *, interval: float = 15.0,
                 batch: int = 50) -> None:
        self.services = services
        self.gateway = gateway
        self.interval = interval
        self.batch = batch
        self._wake = asyncio.Event()
        self._stopping = False
        self._last_sweep: float | None = None  # monotonic time of the last release_reachable sweep
        self._task: asyncio.Task[None] | None = None
        self._store_down = False  # in a database outage (logged once)

    def kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox-delivery")

    async def stop(self, timeout: float = 5.0) -> None:
        """Let the current pass finish (a message sent must also be marked sent), then end."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_once(self) -> int:
        """Passes until nothing more is due now; returns how many messages were sent. The safety
        sweep over held messages runs at most once per `interval` (kicks after each commit come
        far more often and the sweep reads every held row)."""
        now = time.monotonic()
        if self._last_sweep is None or now - self._last_sweep >= self.interval:
            self._last_sweep = now
            await release_reachable(self.services)
        sent = 0
        while True:
            result = await _deliver_pass(self.services, self.gateway, self.batch)
            sent += result.sent
            if result.due < self.batch or result.changed == 0 or self._stopping:
                return sent

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # a kick during the pass below triggers another pass at once
            try:
                await self.run_once()
                if self._store_down:
                    self._store_down = False
                    log.info("outbox delivery: the database is back")
            except StoreUnavailable as error:  # an outage: one line, not a traceback per pass
                if not self._store_down:
                    self._store_down = True
                    log.warning("outbox delivery paused, the database is unavailable: %s", error)
            except Exception:  # noqa: BLE001 - the worker must outlive a bad pass
                log.exception("outbox delivery pass failed")
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), await self._until_next_due())

    async def _until_next_due(self) -> float:
        """Seconds to sleep: until the next claim runs out or retry is due (a dead worker's
        messages go out as soon as its lease ends), at most `interval`."""
        try:
            async with self.services.uow() as uow:
                due = await uow.outbox.next_due()
        except Exception:  # noqa: BLE001 - the database blinked: the interval will do
            return self.interval
        if due is None:
            return self.interval
        return min(self.interval, max((due - self.services.clock.now()).total_seconds(), 0.05))
