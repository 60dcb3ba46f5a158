"""The composition root: everything is built here, for `serve`, `demo`, the command line and the
tests (cosmicpython's bootstrap.py).

- `build_services(...)`: the use cases' Services over given ports, with the message bus wired
  (push handlers in the transaction, delivery kicked after it). Unit tests call it with memory
  stores; the app calls it with the real ones.
- `BotApp`: one running bot (stores from Settings, NLU, WeChat gateway, conversation, delivery
  worker, scheduled jobs, the web app): `await start()`, serve `web_app`, `await stop()`.
- `open_storage(settings)`, `command_services(settings)`, `open_gateway(settings)`: what a CLI
  command needs (storage on an up-to-date schema; Services over it; the WeChat gateway).
- `JOBS`: the scheduled jobs, module-level functions of the app (python-telegram-bot's job queue),
  registered in `BotApp.start`.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.core.clock import Clock, SystemClock
from bot.core.events import MessagesQueued, PushFailed, PushUndeliverable
from bot.core.ports import NLU, KeyValueStore, StoreUnavailable, UnitOfWorkFactory, WeChatGateway
from bot.leader import SchedulerLeader
from bot.settings import Settings
from bot.texts import Texts, default_texts
from handlers import failures, late_inbound, live, live_notify, notify, staff_pushes, ticket_links
from handlers.bus import BusUnitOfWorkFactory, MessageBus
from handlers.chat import ROUTERS
from handlers.chat.router import Dispatcher
from handlers.delivery import DeliveryWorker
from handlers.places import learn_station_places
from handlers.queue import assign_waiting
from handlers.read_ahead import ReadAheadKV
from handlers.services import Services
from storage.live_feed import feed_for

log = logging.getLogger(__name__)


def wechat_timeout(settings: Settings) -> aiohttp.ClientTimeout:
    """Every WeChat call is bounded: a hung call must not outlive the token lock."""
    return aiohttp.ClientTimeout(total=settings.wechat_timeout, connect=min(5.0, settings.wechat_timeout))


def subscribe_all(bus: MessageBus, services: Services) -> None:
    """Every event subscription of the application. A new feature subscribes here."""
    # pushes about tickets, stored in the transaction; a deputy's carry the ticket page's link
    notify.register(bus, services.texts, link=partial(ticket_links.ticket_link, services.settings))
    staff_pushes.register(bus, services.texts)  # and about staff actions on them
    live_notify.register(bus, services.texts, feed_for(services.kv.store, services.settings))  # 云直播
    bus.subscribe(PushFailed, failures.record_push_failure)  # for staff and the next deputy on duty
    bus.subscribe(PushUndeliverable, failures.record_push_failure)  # likewise, for a push nothing can deliver
    # late-bound: the app's delivery worker is built after the Services it needs
    bus.subscribe_after_commit(MessagesQueued, lambda _: services.kick_delivery())


def build_services(settings: Settings, *, uow: UnitOfWorkFactory, kv: KeyValueStore, nlu: NLU,
                   clock: Clock, texts: Texts | None = None,
                   kick_delivery: Callable[[], None] | None = None) -> Services:
    """The use cases' Services; `uow` is the storage's factory (memory or SQL), wrapped so each
    commit dispatches the recorded events. `kick_delivery` may be set later (the app's delivery
    worker needs the Services first)."""
    bus = MessageBus()
    services = Services(uow=BusUnitOfWorkFactory(uow, bus, clock), kv=ReadAheadKV(kv), nlu=nlu, clock=clock,
                        settings=settings, texts=texts or default_texts())
    if kick_delivery is not None:
        services.kick_delivery = kick_delivery
    subscribe_all(bus, services)
    return services


@asynccontextmanager
async def open_storage(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Any]:
    """The SQL unit-of-work factory on an up-to-date schema, so staff need no separate migrate step."""
    from storage.migrate import upgrade
    from storage.sql import SqlUnitOfWorkFactory

    await asyncio.to_thread(upgrade, settings.database_url)  # Alembic is synchronous: off the loop
    factory = SqlUnitOfWorkFactory(settings.database_url, clock=clock)
    try:
        yield factory
    finally:
        await factory.dispose()


@asynccontextmanager
async def command_services(settings: Settings) -> AsyncIterator[Services]:
    """Services for a one-off command: SQL storage, an in-process key-value store (its keys end
    with the command), no NLU."""
    from storage.kv import MemoryKeyValueStore

    clock = SystemClock()
    async with open_storage(settings, clock) as uow_factory:
        yield build_services(settings, uow=uow_factory, kv=MemoryKeyValueStore(), nlu=None,  # type: ignore[arg-type]
                             clock=clock)


@asynccontextmanager
async def open_gateway(settings: Settings) -> AsyncIterator[WeChatGateway]:
    """The WeChat gateway with its own key-value store (the shared access_token) and HTTP session."""
    from bot.wechat.gateway import HttpWeChatGateway
    from storage.kv import build_kv

    kv = build_kv(settings)
    try:
        async with aiohttp.ClientSession(timeout=wechat_timeout(settings)) as session:
            yield HttpWeChatGateway(settings, kv, session)
    finally:
        await kv.close()


# --- scheduled jobs --------------------------------------------------------------------------------
async def drain_queues(bot: BotApp) -> int:
    """Waiting tickets get a deputy as shifts start."""
    assigned = await assign_waiting(bot.services)
    if assigned:
        log.info("assigned %d waiting tickets", assigned)
    return assigned


async def refresh_places(bot: BotApp) -> None:
    """Stations imported meanwhile (by `zhitongche import`, another process) teach the NLU their
    towns and villages; unchanged stations cost one query."""
    await learn_station_places(bot.services)


PROCESSED_INBOUND_KEPT = timedelta(days=7)  # WeChat retries within seconds; a week is plenty


async def prune_processed_inbound(bot: BotApp) -> int:
    """Forget the exactly-once records of old messages."""
    async with bot.services.uow() as uow:
        pruned = await uow.processed_inbound.prune(bot.clock.now() - PROCESSED_INBOUND_KEPT)
        await uow.commit()
    return pruned


async def send_broadcasts(bot: BotApp) -> int:
    """Mass sends of broadcasts still pending (or whose sender died mid-send)."""
    from handlers.broadcasts import send_pending

    return await send_pending(bot.services, bot.gateway)  # type: ignore[arg-type]


async def sync_follow_tags(bot: BotApp) -> int:
    """WeChat user tags (one per town) catch up with follows and stops."""
    from handlers.broadcasts import sync_tags

    return await sync_tags(bot.services, bot.gateway)  # type: ignore[arg-type]


async def remind_receptions(bot: BotApp) -> int:
    """Reception reminders due now (the day before, an hour before, the morning of the day)."""
    from handlers.receptions import send_reminders

    return await send_reminders(bot.services)


@dataclass(frozen=True)
class Job:
    id: str
    run: Callable[[BotApp], Awaitable[Any]]
    trigger: Callable[[], Any]  # a fresh APScheduler trigger


async def replay_late_messages(bot: BotApp) -> int:
    """Messages past the reply deadline whose handler failed or died are handled again."""
    return await late_inbound.replay_due(bot.services, bot.conversation.handle)


async def end_live_sessions(bot: BotApp) -> int:
    """Live sessions past their ends_at end; what was left unanswered becomes tickets."""
    return await live.end_due_sessions(bot.services)


JOBS = (
    # shifts start on whole minutes (HH:MM): a check at second 0 drains each station queue at the
    # moment its next shift begins
    Job("drain_queues", drain_queues, lambda: CronTrigger(second=0)),
    Job("refresh_places", refresh_places, lambda: CronTrigger(second=30)),
    Job("prune_processed_inbound", prune_processed_inbound, lambda: CronTrigger(hour=3, minute=17)),
    # often: a send left by a dead sender is taken again soon after its claim runs out (one cheap query)
    Job("send_broadcasts", send_broadcasts, lambda: CronTrigger(second="*/5")),
    Job("remind_receptions", remind_receptions, lambda: CronTrigger(second=30)),
    Job("end_live_sessions", end_live_sessions, lambda: CronTrigger(second="*/15")),
    Job("replay_late_messages", replay_late_messages, lambda: CronTrigger(second="*/5")),
    Job("sync_follow_tags", sync_follow_tags, lambda: CronTrigger(minute="*/5", second=45)),
)


# --- the running app -------------------------------------------------------------------------------
class PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log without the query string: WeChat puts the sender's openid there. Successful
    requests to `quiet_paths` (polling) are logged at DEBUG, not INFO."""

    quiet_paths: tuple[str, ...] = ()

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        quiet = response.status < 400 and request.path in self.quiet_paths
        self.logger.log(logging.DEBUG if quiet else logging.INFO, "%s %s %s %d %.1fms", request.remote,
                        request.method, request.path, response.status, time * 1000)


@dataclass
class BotApp:
    """One running bot: call `await start()`, serve `web_app`, then `await stop()`."""

    settings: Settings
    clock: Clock = field(default_factory=SystemClock)
    nlu: NLU | None = None  # injected in tests; built from settings otherwise
    gateway: WeChatGateway | None = None
    run_migrations: bool = True

    services: Services = field(init=False)
    web_app: web.Application = field(init=False)

    async def start(self) -> None:
        from bot.console import add_console_routes, live_api
        from bot.ticket_page import add_ticket_page_routes
        from bot.webhook import add_webhook_routes
        from bot.wechat.gateway import HttpMassGateway
        from nlu import build_nlu
        from storage.kv import build_kv
        from storage.migrate import upgrade
        from storage.sql import SqlUnitOfWorkFactory

        if self.run_migrations:
            await asyncio.to_thread(upgrade, self.settings.database_url)  # Alembic is synchronous
        self.kv = build_kv(self.settings)
        self.uow_factory = SqlUnitOfWorkFactory(self.settings.database_url, clock=self.clock)
        self.http = aiohttp.ClientSession(timeout=wechat_timeout(self.settings))
        if self.gateway is None:
            self.gateway = HttpMassGateway(self.settings, self.kv, self.http)
        if self.nlu is None:
            # loads (or, after a data change, trains) the model: seconds of CPU, off the loop
            self.nlu = await asyncio.to_thread(build_nlu, self.settings)
        self.services = build_services(self.settings, uow=self.uow_factory, kv=self.kv, nlu=self.nlu,
                                       clock=self.clock)
        self.delivery = DeliveryWorker(self.services, self.gateway)
        self.services.kick_delivery = self.delivery.kick
        self.conversation = Dispatcher(self.services, ROUTERS)
        await learn_station_places(self.services)
        self.delivery.start()

        self._job_running = asyncio.Lock()  # stop() waits for a job under way
        self._jobs_store_down = False  # in an outage (logged once)
        self.leader = SchedulerLeader(self.kv)  # of several workers, one runs the jobs
        await self.leader.start()
        self._senders: set[asyncio.Task[Any]] = set()  # broadcasts being sent now (send_broadcast_now)
        self.scheduler = AsyncIOScheduler(timezone="Asia/Shanghai")
        for job in JOBS:
            self.scheduler.add_job(self._scheduled, job.trigger(), args=[job.id], id=job.id,
                                   max_instances=1, coalesce=True)
        self.scheduler.start()

        self.web_app = web.Application(client_max_size=self.settings.max_body_bytes * 2)
        add_webhook_routes(self.web_app, settings=self.settings, kv=self.kv,
                           handle=self.conversation.handle, late=late_inbound.LateReplies(self.services))
        self.web_app.router.add_get("/healthz", self._healthz)
        self.web_app[live_api.SERVICES], self.web_app[live_api.FEED] = self.services, feed_for(self.kv, self.settings)
        self.web_app[live_api.GATEWAY] = self.gateway
        # the console and the API go through the same units of work (and so the same events) as the chat
        add_console_routes(self.web_app, uow_factory=self.services.uow, engine=self.uow_factory.engine,
                           clock=self.clock, settings=self.settings, texts=self.services.texts,
                           services=self.services, send_broadcast=self.send_broadcast_now)
        # the deputy's read-only ticket page, linked (signed, expiring) from their notices
        add_ticket_page_routes(self.web_app, uow_factory=self.services.uow, settings=self.settings,
                               clock=self.clock, texts=self.services.texts)

    async def run_job(self, job_id: str) -> Any:
        """Run one job of JOBS now (the scheduler calls this; tests too) and return its result."""
        job = next(j for j in JOBS if j.id == job_id)
        async with self._job_running:
            return await job.run(self)

    async def _scheduled(self, job_id: str) -> None:
        if not self.leader.is_leader:  # the others skip this firing
            return
        try:
            done = await self.run_job(job_id)
        except StoreUnavailable as error:  # an outage: one line for it, the next firing tries again
            if not self._jobs_store_down:
                self._jobs_store_down = True
                log.warning("scheduled jobs wait: a store is unavailable (%s)", error)
            return
        if self._jobs_store_down:
            self._jobs_store_down = False
            log.info("scheduled jobs: the stores are back")
        if done:  # which process did the work (the log line names it with several workers)
            log.info("scheduled job %s: %s", job_id, done)

    def send_broadcast_now(self, broadcast_id: int) -> None:
        """Start a stored broadcast's mass sends in the background (the console and the API); a
        sender killed meanwhile leaves the rest to the send_broadcasts job."""
        from handlers.broadcasts import send_pending

        task = asyncio.create_task(send_pending(self.services, self.gateway, broadcast_id))  # type: ignore[arg-type]
        self._senders.add(task)
        task.add_done_callback(self._sender_done)

    def _sender_done(self, task: asyncio.Task[Any]) -> None:
        self._senders.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("broadcast sender failed", exc_info=task.exception())

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        async with self._job_running:
            pass
        await self.leader.stop()
        for task in list(self._senders):  # an unsent call stays pending; the job sends it after a restart
            task.cancel()
        await asyncio.gather(*self._senders, return_exceptions=True)
        await self.delivery.stop()
        close_nlu = getattr(self.nlu, "close", None)  # the Rasa backend holds an HTTP session
        if close_nlu is not None:
            await close_nlu()
        await self.http.close()
        await self.uow_factory.dispose()
        await feed_for(self.kv, self.settings).close()
        await self.kv.close()
