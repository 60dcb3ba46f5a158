"""What one message costs before it touches any state, beside bench_wrk's budget: the work every
callback of bench_wrk's mix pays whatever it says, measured in process (CPU time, best of
--repeat), against the bare aiohttp handler's CPU per message under wrk (same loop as `serve`).

- the WeChat envelope: msg_signature check, AES decrypt, the safe XML parse and wechatpy's, the
  passive reply rendered and encrypted (bot/wechat, the webhook's own work);
- the embedded NLU's parse of the mix's texts, but for the commands answered by keyword before
  any parse (帮助, 我的诉求: dialogues/words.py), spread over all messages;
- one key-value round trip through redis-py (RedisKeyValueStore.get), and what a chat message
  does on Redis: the dedupe claim, the user's lock taken with five reads and released, the
  messaging window (one batch), the reply kept for a retry (one SET);
- one unit of work with one read statement (a citizen's ticket briefs), SQLite and PostgreSQL.

Redis and PostgreSQL parts are skipped (said so) when those servers are not reachable.

    .venv/bin/python bench/bench_floor.py [--messages 1900] [--repeat 3]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import bench_wrk  # noqa: E402 - the mix and the bare server are bench_wrk's
from bench_webhook import AES_KEY, APPID, PG_ADMIN, PG_URL, REDIS_URL, TOKEN  # noqa: E402


def best_per_call(calls: int, repeat: int, run: Callable[[], None]) -> float:
    """Milliseconds of CPU per call, the best of `repeat` runs."""
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        run()
        best = min(best, time.process_time() - started)
    return best / calls * 1000


async def best_per_await(calls: int, repeat: int, make: Callable[[], Awaitable[object]]) -> float:
    best = float("inf")
    for _ in range(repeat + 1):  # the first warms connections and caches
        started = time.process_time()
        for _ in range(calls):
            await make()
        best = min(best, time.process_time() - started)
    return best / calls * 1000


def envelope_and_nlu(messages: int, repeat: int) -> tuple[float, float]:
    from bot.settings import Settings
    from bot.texts import default_texts
    from bot.webhook import render_text_reply
    from bot.wechat.crypto import MessageCrypto
    from bot.wechat.inbound import parse
    from dialogues.words import Words
    from nlu import build_nlu

    file = Path(tempfile.mkdtemp()) / "mix.txt"
    bench_wrk.write_requests(file, messages, "floor", 10**9)
    requests = []
    for line in file.read_text().splitlines():
        query, body = line.split("\t")
        requests.append((dict(urllib.parse.parse_qsl(query)), body.encode()))
    crypto = MessageCrypto(TOKEN, AES_KEY, APPID)
    reply = "您好，平台能做这些：反映问题、查进展、问代表接待日。回复「帮助」看怎么用。"
    texts: list[str] = []

    def envelope() -> None:
        texts.clear()
        for q, body in requests:
            parsed = parse(crypto.decrypt_message(body, q["msg_signature"], q["timestamp"], q["nonce"]))
            texts.append(parsed.inbound.text)
            crypto.encrypt_message(render_text_reply(parsed, reply), q["nonce"])

    nlu = build_nlu(Settings())
    nlu.parse_sync("预热")
    envelope_ms = best_per_call(len(requests), repeat, envelope)
    words = Words.from_texts(default_texts())
    parsed = [t for t in texts if not (words.is_help(t) or words.is_my_tickets(t))]
    nlu_ms = best_per_call(len(texts), repeat, lambda: [nlu.parse_sync(t) for t in parsed])
    return envelope_ms, nlu_ms


async def redis_round_trips(calls: int, repeat: int) -> dict[str, float] | str:
    from storage.kv import RedisKeyValueStore

    kv = RedisKeyValueStore(REDIS_URL, f"ztc_floor_{time.time_ns()}:")
    n = iter(range(10**9))

    async def lock_with_reads() -> None:
        async with kv.lock("user", timeout=5, read=["scene", "checked", "epoch", "not-deputy", "bucket"]):
            pass

    try:
        await kv.set("k", "v", ttl=60)
        return {
            "get": await best_per_await(calls, repeat, lambda: kv.get("k")),
            "claim": await best_per_await(calls, repeat, lambda: kv.claim(
                f"d:{next(n)}", "p", 5, seen_key=f"s:{next(n)}", seen_ttl=5, epoch_key="epoch")),
            "lock": await best_per_await(calls, repeat, lock_with_reads),
            "window": await best_per_await(calls, repeat, lambda: kv.batch(
                sets=[("window", "w", 60)], deletes=["burst"], gets=["held"])),
            "reply": await best_per_await(calls, repeat, lambda: kv.set(f"r:{next(n)}", "r您好", 5)),
        }
    except Exception as exc:  # noqa: BLE001 - an optional part of the table
        return f"skipped: Redis at {REDIS_URL} not reachable ({type(exc).__name__})"
    finally:
        await kv.close()


async def one_statement_uow(url: str, calls: int, repeat: int) -> float:
    from storage.migrate import upgrade
    from storage.sql import SqlUnitOfWorkFactory

    await asyncio.to_thread(upgrade, url)
    factory = SqlUnitOfWorkFactory(url)
    try:
        async def unit_of_work() -> None:
            async with factory() as uow:
                await uow.tickets.briefs_for_citizen("oFloor")

        return await best_per_await(calls, repeat, unit_of_work)
    finally:
        await factory.dispose()


async def postgres_uow(calls: int, repeat: int) -> float | str:
    import asyncpg

    name = f"ztc_floor_{time.time_ns()}"
    try:
        admin = await asyncpg.connect(PG_ADMIN)
    except Exception as exc:  # noqa: BLE001
        return f"skipped: PostgreSQL at {PG_ADMIN} not reachable ({type(exc).__name__})"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        return await one_statement_uow(PG_URL.format(name=name), calls, repeat)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def bare_cpu_ms(loop: str) -> float:
    wrk = bench_wrk.ensure_wrk()
    file = Path(tempfile.mkdtemp()) / "bare.txt"
    bench_wrk.write_requests(file, 3000, "bare", 10**9)
    async with bench_wrk.Server("bare", "sqlite", 1, loop) as bare:
        bench_wrk.run_wrk(wrk, 0, bare.port, file, duration=2, connections=50, threads=1)
        return bench_wrk.run_wrk(wrk, 0, bare.port, file, duration=5, connections=50, threads=1,
                                 server_pid=bare.proc.pid)["cpu_ms"]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1900)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000, help="round trips / units of work timed")
    args = parser.parse_args()

    bare = await bare_cpu_ms("uvloop")
    envelope_ms, nlu_ms = envelope_and_nlu(args.messages, args.repeat)
    redis = await redis_round_trips(args.calls, args.repeat)
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_ms = await one_statement_uow(f"sqlite+aiosqlite:///{tmp}/floor.db", args.calls, args.repeat)
    postgres = await postgres_uow(args.calls, args.repeat)

    budget = bare * 10  # ≥ 10 % of the bare handler's rate, both CPU-bound on one core

    def row(label: str, value: float | str) -> None:
        if isinstance(value, str):  # a part skipped, and why
            print(f"  {label}: {value}")
        else:
            print(f"{label:58}{value:8.3f}{value / budget:11.0%}")

    print(f"bare aiohttp handler under wrk (uvloop): {bare:.3f} ms of CPU per message → a full path at "
          f"10 % of its rate may spend {budget:.3f} ms per message")
    print(f"{'paid by every message':58}{'ms CPU':>8}{'of budget':>11}")
    every = [("aiohttp's own work (the bare handler)", bare),
             ("WeChat envelope: signature, AES, XML parse, reply, AES", envelope_ms),
             ("embedded NLU parse (the mix's texts but commands)", nlu_ms)]
    for label, ms in every:
        row(label, ms)
    row("= before any state is read or written", sum(ms for _, ms in every))
    print("per use of a store")
    if isinstance(redis, str):
        row("Redis", redis)
    else:
        row("  one redis-py round trip (GET)", redis["get"])
        chat = [("    the dedupe claim (one script)", redis["claim"]),
                ("    the user's lock with five reads, released", redis["lock"]),
                ("    the messaging window (one batch)", redis["window"]),
                ("    the reply kept for a retry (one SET)", redis["reply"])]
        print("  a chat message on Redis:")
        for label, ms in chat:
            row(label, ms)
        row("    = its Redis work", sum(ms for _, ms in chat))
    row("  unit of work, one read statement, SQLite", sqlite_ms)
    row("  unit of work, one read statement, PostgreSQL", postgres)

if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
