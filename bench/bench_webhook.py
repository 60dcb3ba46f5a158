"""Webhook throughput and latency: the full passive-reply path against a bare aiohttp handler.

Both servers run in their own process, one after the other, under the same load (50 concurrent
connections). The full path: signature, decrypt, parse, de-duplicate, dialogue state, NLU, reply,
encrypt — with AES safe mode on, on embedded defaults (SQLite, in-process stores) or, with
`--store postgres`, on PostgreSQL + Redis (a database and key prefix of its own, removed after).
Prints messages/s and p50/p99 for both and their ratio, then paces the full path (open loop) at 10%
of the bare handler's rate, and at 70% of its own best rate, for its latency at those loads. Not a test: numbers depend on the machine.

    .venv/bin/python bench/bench_webhook.py [--requests 3000] [--concurrency 50] [--store postgres]
"""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import xmltodict

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "benchtoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wxbench000000000"
TEXTS = ["你好", "这个平台能做什么", "我们村口的路灯坏了一个星期了", "取消", "我的诉求", "谢谢"]
BARE_REPLY = (
    "<xml><ToUserName><![CDATA[u]]></ToUserName><FromUserName><![CDATA[gh]]></FromUserName>"
    "<CreateTime>0</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[您好]]></Content></xml>"
)


PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
REDIS_URL = "redis://127.0.0.1:6379/0"


def bench_name(run: str | None = None) -> str:
    """Database and key prefix of this run's own (the parent's pid, shared with its servers), or of
    `run` (bench_wrk's baseline server)."""
    return f"ztc_bench_{run or os.environ.get('ZTC_BENCH_RUN', os.getpid())}"


async def create_store(store: str, run: str | None = None) -> None:
    if store == "postgres":
        import asyncpg

        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'CREATE DATABASE "{bench_name(run)}"')
        await conn.close()


async def drop_store(store: str, run: str | None = None) -> None:
    name = bench_name(run)
    if store == "postgres":
        import asyncpg
        import redis.asyncio as redis

        conn = await asyncpg.connect(PG_ADMIN)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
        client = redis.from_url(REDIS_URL)
        async for key in client.scan_iter(match=f"{name}:*"):
            await client.delete(key)
        await client.aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- servers (run in a child process) ----------------------------------------------------------
async def serve_bare(port: int) -> None:
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text=BARE_REPLY, content_type="application/xml")

    app = web.Application()
    app.router.add_post("/wechat", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


async def start_bot(store: str, log_level: int):
    """A fake WeChat API and the full bot on `store` (sqlite or postgres), started, with the demo's
    stations, deputies and duty roster imported; returns the BotApp (not yet serving HTTP)."""
    import logging

    from aiohttp import web

    from bot.bootstrap import BotApp
    from bot.demo import DEMO_DIR
    from bot.settings import Settings
    from bot.wechat.fake_api import FakeWeChatAPI
    from storage.importer import import_file

    logging.basicConfig(level=log_level)
    api_port = free_port()
    api_runner = web.AppRunner(FakeWeChatAPI().create_app(), access_log=None)
    await api_runner.setup()
    await web.TCPSite(api_runner, "127.0.0.1", api_port).start()
    if store == "postgres":
        database_url, redis_url = PG_URL.format(name=bench_name()), REDIS_URL
    else:
        database_url, redis_url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}", ""
    settings = Settings(database_url=database_url, redis_url=redis_url, redis_prefix=f"{bench_name()}:",
                        wechat_token=TOKEN, wechat_aes_key=AES_KEY, wechat_appid=APPID,
                        wechat_api_base=f"http://127.0.0.1:{api_port}")
    bot = BotApp(settings)
    await bot.start()
    for kind in ("stations", "deputies", "duty"):
        await import_file(bot.services.uow, kind, DEMO_DIR / f"{kind}.csv")
    return bot


async def serve_full(port: int, store: str, up_days: float = 0) -> None:
    """The full app on `port`; its key-value store has been up `up_days` (0: just started): a
    store's first dedupe_ttl (10 min) reads every message's exactly-once record, its first day each
    new user's noted scene (docs/architecture.md "Exactly once")."""
    import logging
    from datetime import timedelta

    from aiohttp import web

    bot = await start_bot(store, logging.ERROR)  # a notice per filing about unbound deputies: not news
    if up_days:  # literal keys: bench_wrk's --baseline-tree may predate keys.DEDUPE_EPOCH
        await bot.kv.set("store:epoch", (bot.clock.now() - timedelta(days=up_days)).isoformat())
        await bot.kv.set("wechat:dedupe-epoch", repr(time.time() - up_days * 86400))
    bot.nlu.parse_sync("预热")  # type: ignore[union-attr]  # load the model before the clock starts
    runner = web.AppRunner(bot.web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


# --- load generator -----------------------------------------------------------------------------
def build_requests(count: int, encrypted: bool, *, run: str = "run") -> list[tuple[str, bytes]]:
    """`count` messages from count/len(TEXTS) users, each saying TEXTS in order (a short chat that
    opens and cancels a report), the users' chats interleaved at random: new users keep arriving
    through the run instead of all at its start."""
    from wechatpy.crypto import WeChatCrypto

    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    users = max(1, count // len(TEXTS))
    turns = [user for user in range(users) for _ in TEXTS][:count]
    random.Random(7).shuffle(turns)
    said = [0] * users
    out = []
    for i, user in enumerate(turns):
        openid, text = f"bench-{run}-{user:04d}", TEXTS[said[user]]
        said[user] += 1
        msg_id = 9000000000 + i + (500000 if run == "warmup" else 0)
        xml = (
            f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
            f"</FromUserName><CreateTime>{1764000000 + i}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{msg_id}</MsgId></xml>"
        )
        timestamp, nonce = str(int(time.time())), str(100000 + i)
        signature = hashlib.sha1("".join(sorted([TOKEN, timestamp, nonce])).encode()).hexdigest()
        query = f"signature={signature}&timestamp={timestamp}&nonce={nonce}&openid={openid}"
        if encrypted:
            body = crypto.encrypt_message(xml, nonce, timestamp)
            msg_signature = xmltodict.parse(body)["xml"]["MsgSignature"]
            query += f"&encrypt_type=aes&msg_signature={msg_signature}"
            out.append((query, body.encode()))
        else:
            out.append((query, xml.encode()))
    return out


async def post(session: aiohttp.ClientSession, port: int, query: str, body: bytes) -> None:
    async with session.post(f"http://127.0.0.1:{port}/wechat?{query}", data=body) as resp:
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}")


async def drive(port: int, requests: list[tuple[str, bytes]], concurrency: int) -> tuple[float, list[float]]:
    """Closed loop: each connection sends its next message as soon as the last one is answered."""
    latencies: list[float] = []
    queue = list(reversed(requests))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def worker() -> None:
            while queue:
                query, body = queue.pop()
                started = time.perf_counter()
                await post(session, port, query, body)
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies


async def drive_at_rate(port: int, requests: list[tuple[str, bytes]], concurrency: int,
                        rate: float) -> tuple[float, list[float]]:
    """Open loop: request i is due at i/rate s; latency counts from when it was due, so a slow
    server cannot hide its queue by slowing the sender down."""
    latencies: list[float] = []
    connections = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def one(query: str, body: bytes, due: float) -> None:
            async with connections:
                await post(session, port, query, body)
            latencies.append(time.perf_counter() - due)

        started = time.perf_counter()
        tasks = []
        for i, (query, body) in enumerate(requests):
            due = started + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(query, body, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return elapsed, latencies


async def wait_ready(port: int, proc: subprocess.Popen) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            raise RuntimeError("server process exited")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def measure(kind: str, total: int, concurrency: int, store: str,
                  rate: float | None = None) -> dict[str, float]:
    """Closed loop (as fast as the server answers) or, with `rate`, open loop at that rate."""
    port = free_port()
    env = {**os.environ, "ZTC_BENCH_RUN": str(os.getpid())}
    proc = subprocess.Popen([sys.executable, __file__, "--serve", kind, "--port", str(port), "--store", store],
                            cwd=ROOT, env=env)
    try:
        await wait_ready(port, proc)
        encrypted = kind == "full"
        await drive(port, build_requests(300, encrypted, run="warmup"), concurrency)
        requests = build_requests(total, encrypted)
        if rate is None:
            elapsed, latencies = await drive(port, requests, concurrency)
        else:
            elapsed, latencies = await drive_at_rate(port, requests, concurrency, rate)
    finally:
        proc.terminate()
        proc.wait(10)
    return {"rate": len(latencies) / elapsed, "p50": percentile(latencies, 50) * 1000,
            "p99": percentile(latencies, 99) * 1000}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--serve", choices=["bare", "full"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    if args.serve == "bare":
        await serve_bare(args.port)
        return
    if args.serve == "full":
        await serve_full(args.port, args.store)
        return
    await create_store(args.store)
    try:
        bare = await measure("bare", args.requests, args.concurrency, args.store)
        full = await measure("full", args.requests, args.concurrency, args.store)
        target_rate = bare["rate"] * 0.10
        paced = await measure("full", args.requests, args.concurrency, args.store, rate=target_rate)
        # below saturation: the latency a citizen sees when the server keeps up
        comfortable_rate = full["rate"] * 0.7
        comfortable = await measure("full", args.requests, args.concurrency, args.store, rate=comfortable_rate)
    finally:
        await drop_store(args.store)
    print(f"{args.concurrency} connections, {os.cpu_count()} cores, store {args.store}")
    print(f"{'':44}{'msg/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    rows = (("bare aiohttp handler, as fast as it answers", bare),
            ("full passive-reply path, as fast as it answers", full),
            (f"full path paced at 10% of bare ({target_rate:.0f}/s)", paced),
            (f"full path paced at 70% of its best ({comfortable_rate:.0f}/s)", comfortable))
    for name, r in rows:
        print(f"{name:44}{r['rate']:10.0f}{r['p50']:10.1f}{r['p99']:10.1f}")
    print(f"throughput ratio full/bare: {full['rate'] / bare['rate']:.1%} (target ≥ 10%); "
          f"p99 at 10% of bare's rate: {paced['p99']:.1f} ms (target < 50 ms)")


if __name__ == "__main__":
    asyncio.run(main())
