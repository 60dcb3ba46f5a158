"""Delivering the outbox within WeChat's messaging rules, with retries; never dropping a message.

What is implemented, per recipient (citizen or deputy: both are followers of the account). The
windows are short-lived state with their own expiry, so they live in the key-value store:
- A message from the user (text, image, voice, location...) opens the customer-service window:
  48 h, at most CS_QUOTA (5) messages, under keys.message_window; the user's next message resets it.
- A follow, QR scan or menu click opens a short window: BURST_QUOTA (3) messages within
  BURST_WINDOW (1 min), under keys.burst_window. It is used only when the 48 h window is not open.
- Inside a window: customer-service text. Otherwise, when the message has a template key and
  settings.template_id(key) is configured: a template message. Otherwise the message is `held`
  until the user writes again: keys.held_mark marks that there is something to release, and each
  delivery run also releases held messages of users whose window is open (should a mark be lost).
- Errors: 45015 (window expired) / 45047 (quota used up) mean WeChat counts the window closed:
  we mark it closed for that user and fall back to template/held at once, no blind retry.
  43004 (the user no longer follows us) holds the message. Anything else is retried with
  exponential back-off (RETRY_BASE doubling up to RETRY_MAX); after MAX_ATTEMPTS it is `failed`
  with last_error, visible in `zhitongche outbox`.
- After MAX_ATTEMPTS a message is `failed` for good and records PushFailed: its station's staff
  see it (outbox.failures) and the next on-duty deputy is told in 我的工单 (handlers/failures.py).
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

from bot.core import keys
from bot.core.outbound import Channel, OutboxMessage, OutboxStatus
from bot.core.people import Citizen
from bot.core.ports import WeChatAPIError, WeChatGateway
from bot.core.privacy import mask_openid
from handlers.services import Services

log = logging.getLogger(__name__)

CS_WINDOW = timedelta(hours=48)
CS_QUOTA = 5
BURST_WINDOW = timedelta(minutes=1)
BURST_QUOTA = 3
BURST_EVENTS = frozenset({"subscribe", "scan", "click"})

MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)

WINDOW_CLOSED_ERRORS = frozenset({45015, 45047})  # response out of time limit / count limit
NOT_FOLLOWING_ERRORS = frozenset({43004})  # require subscribe

# A pass's claim on its messages (next_attempt_at moved ahead), renewed while it sends: a worker
# that dies mid-pass leaves them due again within this.
CLAIM_LEASE = timedelta(seconds=6)
SEND_CONCURRENCY = 8  # recipients served at once by one worker


# --- the window ----------------------------------------------------------------------------------
async def record_inbound(services: Services, openid: str, *, event: str = "") -> None:
    """Note that the user reached us: event "" for a message (opens the 48 h window), or the
    lower-case event name (subscribe/scan/click open the 1-minute window; others change nothing).
    Held messages for the user go back to pending.

    A message costs no database work: the window lives in the key-value store (it is state that
    expires by itself), and held messages are looked up only when some were held."""
    now = services.clock.now()
    event = event.lower()
    if event and event not in BURST_EVENTS:
        return
    if event:
        async with services.uow() as uow:
            citizen = await uow.citizens.get(openid) or Citizen(openid=openid)
            citizen.subscribed = True
            await uow.citizens.save(citizen)
            await uow.commit()
        await services.kv.set(keys.burst_window(openid), _burst_value(now + BURST_WINDOW, 0),
                              ttl=BURST_WINDOW.total_seconds() * 2)
    else:
        await services.kv.set(keys.message_window(openid), _window_value(now, 0), ttl=CS_WINDOW.total_seconds())
        await services.kv.delete(keys.burst_window(openid))  # the 48 h window supersedes it
    if await services.kv.get(keys.held_mark(openid)) is not None:
        await release_held(services, openid)


async def release_held(services: Services, openid: str) -> int:
    """Held messages for this user become pending again; returns how many."""
    await services.kv.delete(keys.held_mark(openid))  # first: a message held meanwhile marks it again
    async with services.uow() as uow:
        held = await uow.outbox.held_for(openid)
        for message in held:
            message.status = OutboxStatus.PENDING
            message.next_attempt_at = None
            await uow.outbox.save(message)
        await uow.commit()
    if held:
        log.info("released %d held messages for %s", len(held), mask_openid(openid))
        services.kick_delivery()
    return len(held)


async def release_reachable(services: Services) -> int:
    """Held messages whose recipient can be reached again: a safety net for a lost `held:` mark
    (a restarted Redis) or a message held just as the user wrote."""
    now = services.clock.now()
    async with services.uow() as uow:
        recipients = {m.recipient_openid for m in await uow.outbox.list((OutboxStatus.HELD,))}
    released = 0
    for openid in recipients:
        if await _open_window(services, None, openid, now) is not None:
            released += await release_held(services, openid)
    return released


async def window_state(services: Services, openid: str) -> tuple[datetime, int] | None:
    """The 48 h window's start and the messages sent in it, or None when it is shut."""
    return _parse_window(await services.kv.get(keys.message_window(openid)))


def _window_value(since: datetime, sent: int) -> str:
    return f"{since.isoformat()}|{sent}"


def _burst_value(until: datetime, sent: int) -> str:
    return f"{until.isoformat()}|{sent}"


def _parse_window(raw: str | None) -> tuple[datetime, int] | None:
    """`<iso time>|<messages sent>`: the window's start (48 h) or end (burst), and its count."""
    if not raw:
        return None
    try:
        until, sent = raw.split("|")
        return datetime.fromisoformat(until), int(sent)
    except ValueError:
        return None


@dataclass
class _Window:
    kind: str  # "message" (48 h) | "burst" (1 min after follow/scan/click)
    since_or_until: datetime  # the message window's start, the burst window's end
    sent: int = 0


async def _open_window(services: Services, citizen: Citizen | None, openid: str, now: datetime) -> _Window | None:
    if citizen is not None and not citizen.subscribed:
        return None
    message = await window_state(services, openid)
    if message is not None and now - message[0] < CS_WINDOW and message[1] < CS_QUOTA:
        return _Window("message", *message)
    burst = _parse_window(await services.kv.get(keys.burst_window(openid)))
    if burst is not None and now < burst[0] and burst[1] < BURST_QUOTA:
        return _Window("burst", *burst)
    return None


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
    claim = await _Claim.take(services, limit)
    result.due = len(claim.due)
    by_recipient: dict[str, list[tuple[OutboxMessage, datetime | None]]] = {}
    for message, due_at in claim.due:
        by_recipient.setdefault(message.recipient_openid, []).append((message, due_at))
    slots = asyncio.Semaphore(SEND_CONCURRENCY)
    skipped: list[tuple[OutboxMessage, datetime | None]] = []

    async def serve(queue: list[tuple[OutboxMessage, datetime | None]]) -> None:
        async with slots:
            for position, (message, _) in enumerate(queue):
                if not claim.holds(message):  # the lease ran out and another worker took it
                    return
                sent = await _deliver_one(services, gateway, message)
                claim.done(message)
                result.changed += 1
                if not sent:  # the recipient's later messages must not overtake this one
                    skipped.extend(queue[position + 1:])
                    return
                result.sent += 1

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


class _Claim:
    """This pass's lease on its messages: taken in one transaction, renewed while sending."""

    def __init__(self, services: Services, due: list[tuple[OutboxMessage, datetime | None]], until: datetime) -> None:
        self.services = services
        self.due = due  # (message, its due time before the claim)
        self.until = until
        self._open = {m.id for m, _ in due}  # claimed, not yet done, still ours

    @classmethod
    async def take(cls, services: Services, limit: int) -> _Claim:
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


async def _deliver_one(services: Services, gateway: WeChatGateway, message: OutboxMessage) -> bool:
    """One message: True when WeChat accepted it; otherwise it is held, retried later or failed."""
    openid = message.recipient_openid
    now = services.clock.now()
    async with services.uow() as uow:
        citizen = await uow.citizens.get(openid)
    if citizen is not None and not citizen.subscribed:
        await _hold(services, message, "not following the account")
        return False

    window = await _open_window(services, citizen, openid, now)
    if window is not None:
        try:
            await gateway.send_text(openid, message.text)
        except WeChatAPIError as error:
            if error.errcode in NOT_FOLLOWING_ERRORS:
                await _hold(services, message, str(error))
                return False
            if error.errcode not in WINDOW_CLOSED_ERRORS:
                await _retry(services, message, str(error))
                return False
            # WeChat says the window is shut: believe it, then try the template below
            log.info("window closed for %s (%s)", mask_openid(openid), error.errcode)
            await _close_window(services, openid)
        except Exception as error:  # network, timeout...: a temporary failure
            await _retry(services, message, f"{type(error).__name__}: {error}")
            return False
        else:
            await _mark_sent(services, message, Channel.CUSTOMER_SERVICE, window)
            return True

    template_id = services.settings.template_id(message.template_key) if message.template_key else ""
    if not template_id:
        await _hold(services, message, "outside the messaging window, no template configured")
        return False
    try:
        await gateway.send_template(openid, template_id, dict(message.template_data))
    except WeChatAPIError as error:
        if error.errcode in NOT_FOLLOWING_ERRORS:
            await _hold(services, message, str(error))
        else:
            await _retry(services, message, str(error))
        return False
    except Exception as error:
        await _retry(services, message, f"{type(error).__name__}: {error}")
        return False
    await _mark_sent(services, message, Channel.TEMPLATE, None)
    return True


async def _mark_sent(services: Services, message: OutboxMessage, channel: Channel, window: _Window | None) -> None:
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
            await services.kv.set(keys.message_window(openid), _window_value(window.since_or_until, window.sent + 1),
                                  ttl=max(ttl.total_seconds(), 1.0))
        else:
            ttl = max((window.since_or_until - now).total_seconds(), 1.0) * 2
            await services.kv.set(keys.burst_window(openid), _burst_value(window.since_or_until, window.sent + 1), ttl=ttl)
    log.info("outbox %s sent to %s by %s", message.id, mask_openid(message.recipient_openid), channel)


async def _close_window(services: Services, openid: str) -> None:
    """WeChat says the window is shut: it opens again when the user next writes."""
    await services.kv.delete(keys.message_window(openid))
    await services.kv.delete(keys.burst_window(openid))


async def _hold(services: Services, message: OutboxMessage, reason: str) -> None:
    message.status = OutboxStatus.HELD
    message.last_error = reason
    message.next_attempt_at = None
    async with services.uow() as uow:
        await uow.outbox.save(message)
        await uow.commit()
    await services.kv.set(keys.held_mark(message.recipient_openid), "1")  # released when the user writes
    log.info("outbox %s held for %s: %s", message.id, mask_openid(message.recipient_openid), reason)


def retry_delay(attempts: int) -> timedelta:
    """Back-off after the n-th failed attempt: 30 s, 1 min, 2 min, 4 min... at most an hour."""
    return min(RETRY_BASE * (2 ** max(attempts - 1, 0)), RETRY_MAX)


async def _retry(services: Services, message: OutboxMessage, error: str) -> None:
    now = services.clock.now()
    message.attempts += 1
    message.last_error = error[:500]
    if message.attempts >= MAX_ATTEMPTS:
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
