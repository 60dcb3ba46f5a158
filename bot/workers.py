"""`zhitongche serve [--workers N]`: one server process, or N worker processes on one port.

Each worker is a forked child running its own BotApp and aiohttp server on a socket of its own
bound with SO_REUSEPORT: the kernel spreads new connections over them. They share PostgreSQL
(the outbox is claimed with FOR UPDATE SKIP LOCKED) and Redis (dedupe, locks, the scheduler
lease: bot/leader.py), so N > 1 needs both. The parent only supervises: it migrates the
database once before forking (N concurrent upgrades would race), starts a new worker when one
dies, and on SIGTERM/SIGINT stops every worker (SIGTERM, then SIGKILL after STOP_GRACE)."""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.settings import Settings

log = logging.getLogger(__name__)

CHILD_SHUTDOWN = 10.0  # seconds a stopping worker gives requests in flight
STOP_GRACE = 30.0  # then the parent kills what is left
RESTART_BACKOFF = 1.0  # a worker that died within QUICK_DEATH of its start waits this long first
QUICK_DEATH = 5.0
WORKERS_LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


class WorkersNeedSharedStores(Exception):
    """N > 1 with SQLite or without Redis: the message says what to set, in Chinese."""


def check_shareable(settings: Settings, workers: int) -> None:
    from bot.cli_output import database_label
    from bot.texts import default_texts
    from storage.sql_engine import is_sqlite

    if workers > 1 and (is_sqlite(settings.database_url) or not settings.redis_url):
        texts = default_texts()
        redis = texts.get("cli_workers_redis_set" if settings.redis_url else "cli_workers_redis_unset")
        raise WorkersNeedSharedStores(texts.get("cli_workers_need_shared", workers=workers, redis=redis,
                                                database=database_label(settings.database_url)))


def run_server(settings: Settings, host: str, port: int, *, worker: bool = False) -> None:
    """One BotApp behind aiohttp until SIGTERM/SIGINT. As a worker: SO_REUSEPORT, migrations
    left to the parent, and only SIGTERM (from the parent) stops it."""
    import uvloop
    from aiohttp import web

    from bot.bootstrap import BotApp, PathOnlyAccessLogger

    bot = BotApp(settings, run_migrations=not worker)

    async def app_factory() -> web.Application:
        if worker:
            _stop_on_first_sigterm()
        await bot.start()

        async def on_cleanup(_: web.Application) -> None:
            await bot.stop()

        bot.web_app.on_cleanup.append(on_cleanup)
        if worker:
            log.info("worker pid %d serving on %s:%d", os.getpid(), host, port)
        return bot.web_app

    # uvloop: about a quarter less CPU per message than asyncio's own loop (bench/bench_wrk.py)
    web.run_app(app_factory(), host=host, port=port, access_log_class=PathOnlyAccessLogger,
                loop=uvloop.new_event_loop(), reuse_port=worker or None, handle_signals=not worker,
                shutdown_timeout=CHILD_SHUTDOWN if worker else 60.0,
                print=None if worker else print)


def _stop_on_first_sigterm() -> None:
    """A worker stops cleanly on the parent's SIGTERM; a second signal must not cut its cleanup."""
    import asyncio

    from aiohttp.web_runner import GracefulExit

    loop = asyncio.get_running_loop()

    def stop() -> None:
        loop.remove_signal_handler(signal.SIGTERM)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise GracefulExit()

    loop.add_signal_handler(signal.SIGTERM, stop)


def _worker_main(host: str, port: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which says SIGTERM
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's handler is inherited by fork
    _die_with_parent()
    run_server(Settings(), host, port, worker=True)


def _die_with_parent() -> None:
    """Linux: a worker gets SIGTERM when the supervisor dies (even by kill -9), not left serving alone."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Slot:
    number: int
    process: Any = None  # multiprocessing.Process
    started: float = 0.0
    not_before: float = 0.0  # a restart waits until then


@dataclass
class Supervisor:
    """Keeps `workers` children running `target(host, port)` until told to stop."""

    workers: int
    host: str
    port: int
    target: Callable[[str, int], None] = _worker_main
    poll_every: float = 0.2
    slots: list[Slot] = field(init=False)
    stopping: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.slots = [Slot(i) for i in range(1, self.workers + 1)]
        self._context = multiprocessing.get_context("fork")  # cheap; the parent holds no threads or loops

    def run(self) -> None:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            log.info("supervisor pid %d: %d workers on %s:%d", os.getpid(), self.workers, self.host, self.port)
            while not self.stopping:
                now = time.monotonic()
                for slot in self.slots:
                    self._check(slot, now)
                time.sleep(self.poll_every)
        finally:
            self._stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self.stopping:
            log.info("supervisor: %s, stopping the workers", signal.Signals(signum).name)
        self.stopping = True

    def _check(self, slot: Slot, now: float) -> None:
        proc = slot.process
        if proc is not None and proc.is_alive():
            return
        if proc is not None:
            proc.join()
            lived = now - slot.started
            log.warning("worker %d (pid %d) exited with %s after %.1fs; starting another", slot.number, proc.pid,
                        proc.exitcode, lived)
            slot.process = None
            slot.not_before = now + (RESTART_BACKOFF if lived < QUICK_DEATH else 0.0)
        if now < slot.not_before:
            return
        slot.process = self._context.Process(target=self.target, args=(self.host, self.port),
                                              name=f"zhitongche-worker-{slot.number}", daemon=False)
        slot.process.start()
        slot.started = now
        log.info("worker %d started (pid %d)", slot.number, slot.process.pid)

    def _stop_all(self) -> None:
        alive = [s.process for s in self.slots if s.process is not None and s.process.is_alive()]
        for proc in alive:
            os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in alive:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning("worker pid %d did not stop in %.0fs: killed", proc.pid, STOP_GRACE)
                proc.kill()
                proc.join()
        log.info("supervisor: all workers stopped")


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """What `zhitongche serve` runs. Raises WorkersNeedSharedStores before starting anything."""
    if workers <= 1:
        run_server(settings, host, port)
        return
    check_shareable(settings, workers)
    from storage.migrate import upgrade

    for handler in logging.getLogger().handlers:  # which worker said it
        handler.setFormatter(logging.Formatter(WORKERS_LOG_FORMAT))
    upgrade(settings.database_url)  # once, before the workers (N concurrent upgrades would race)
    Supervisor(workers, host, port).run()
