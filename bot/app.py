"""Composition root: builds the stores, engines and workers from Settings and runs them."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.domain import OutboxMessage, mask_openid
from bot.messages import Inbound
from bot.ports import NLU, Clock, SystemClock, WeChatGateway
from bot.settings import Settings
from bot.texts import default_texts
from handlers.conversation import Conversation
from handlers.delivery import DeliveryWorker
from handlers.queue import assign_waiting
from handlers.services import Services

log = logging.getLogger(__name__)


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log without the query string: WeChat puts the sender's openid there."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s %d %.1fms", request.remote, request.method, request.path,
                         response.status, time * 1000)


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
        from bot.console import add_console_routes
        from bot.webhook import add_webhook_routes
        from bot.wechat.gateway import HttpWeChatGateway
        from nlu import build_nlu
        from storage.kv import build_kv
        from storage.migrate import upgrade
        from storage.sql import SqlUnitOfWorkFactory

        if self.run_migrations:
            # Alembic is synchronous: keep it off the event loop.
            await asyncio.to_thread(upgrade, self.settings.database_url)
        self.kv = build_kv(self.settings)
        self.uow_factory = SqlUnitOfWorkFactory(self.settings.database_url)
        # every WeChat call is bounded: a hung call must not outlive the token lock or a delivery claim
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10, connect=5))
        if self.gateway is None:
            self.gateway = HttpWeChatGateway(self.settings, self.kv, self.http)
        if self.nlu is None:
            # loads (or, after a data change, trains) the model: seconds of CPU, off the loop
            self.nlu = await asyncio.to_thread(build_nlu, self.settings)
        self.services = Services(
            uow=self.uow_factory,
            kv=self.kv,
            nlu=self.nlu,
            clock=self.clock,
            settings=self.settings,
            texts=default_texts(),
        )
        self.delivery = DeliveryWorker(self.services, self.gateway)
        self.services.kick_delivery = self.delivery.kick
        self.conversation = Conversation(self.services)
        self.delivery.start()

        self._draining = asyncio.Lock()  # stop() waits for a queue drain under way
        self.scheduler = AsyncIOScheduler(timezone="Asia/Shanghai")
        # Shifts start on whole minutes (HH:MM), so a check at second 0 of every minute drains
        # each station queue at the moment its next shift begins.
        self.scheduler.add_job(self.drain_queues, CronTrigger(second=0), id="drain_queues",
                               max_instances=1, coalesce=True)
        self.scheduler.start()

        self.web_app = web.Application(client_max_size=self.settings.max_body_bytes * 2)
        add_webhook_routes(self.web_app, settings=self.settings, kv=self.kv,
                           handle=self.conversation.handle, push_late=self.push_late)
        self.web_app.router.add_get("/healthz", self._healthz)
        add_console_routes(self.web_app, uow_factory=self.uow_factory, engine=self.uow_factory.engine,
                           clock=self.clock, settings=self.settings, texts=self.services.texts)

    async def drain_queues(self) -> int:
        async with self._draining:
            assigned = await assign_waiting(self.services)
            if assigned:
                log.info("assigned %d waiting tickets", assigned)
            return assigned

    async def push_late(self, inbound: Inbound, text: str) -> None:
        """A reply that missed the passive-reply deadline goes out as a pushed message."""
        async with self.uow_factory() as uow:
            await uow.outbox.add(OutboxMessage(recipient_openid=inbound.openid, text=text,
                                               created_at=self.clock.now()))
            await uow.commit()
        log.info("late reply for %s queued for push", mask_openid(inbound.openid))
        self.services.kick_delivery()

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def stop(self) -> None:
        self.scheduler.shutdown(wait=False)
        async with self._draining:
            pass
        await self.delivery.stop()
        await self.http.close()
        await self.uow_factory.dispose()
        await self.kv.close()
