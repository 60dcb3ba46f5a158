"""云直播 under a reception's load: 2,000 questions from 1,000 users in (scaled) 10 minutes through
/wechat, with WeChat's retries mixed in (the same MsgId again, some at once, some a few seconds
later), while a host listens on the session's event stream (the API's SSE).

The bot runs in its own process (as in production), on SQLite + in-process stores or, with
`--store postgres`, on PostgreSQL + Redis (a database and key prefix of its own, removed after).
Prints: questions sent and stored (none lost, none doubled, checked through the API; a lost one by
its MsgId, the server's log kept in /tmp/bench_live_<store>.log to say why), retries, the
passive replies' p50/p99, and the time from sending a question to the host's stream receiving it
(p50/p99/max). Not a test: numbers depend on the machine.

    .venv/bin/python bench/bench_live.py [--questions 2000] [--users 1000] [--minutes 10] [--scale 1.0]
        [--retries 0.2] [--store postgres]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_webhook import AES_KEY, APPID, TOKEN, bench_name, create_store, drop_store, free_port, start_bot  # noqa: E402

TOPICS = ["垃圾站什么时候建好", "村口路灯坏了", "养老补贴怎么申请", "河道需要清淤", "公交班次太少", "菜场门口乱停车",
          "小区加装电梯", "学校门口交通拥堵", "农田灌溉渠漏水", "医保报销比例"]


# --- the server (a child process) ------------------------------------------------------------------
async def serve(port: int, store: str) -> None:
    import logging
    from datetime import timedelta

    from aiohttp import web

    from bot.console.auth import create_account, issue_token
    from bot.core.live import LiveSession
    from handlers import live

    bot = await start_bot(store, logging.INFO)  # the webhook's late/retry/failed lines, to explain a loss
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    async with bot.services.uow() as uow:
        station = (await uow.stations.list())[0].code
    now = bot.clock.now()
    session = await live.create_session(bot.services, LiveSession(station, "压力测试直播", "", now - timedelta(minutes=1),
                                                                 now + timedelta(hours=3), keyword="压测直播"))
    await create_account(bot.services.uow, bot.clock, username="bench-host", role="district", password="一二三四五六七八")
    token = await issue_token(bot.services.uow, bot.clock, "bench-host")
    runner = web.AppRunner(bot.web_app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(json.dumps({"session": session.id, "keyword": session.keyword, "token": token}), flush=True)
    await asyncio.Event().wait()


# --- the load --------------------------------------------------------------------------------------
def request_for(openid: str, text: str, msg_id: int, created: int) -> tuple[str, bytes]:
    from bot.wechat.crypto import MessageCrypto
    from bot.wechat.platform import signed_request, text_xml

    request = signed_request(TOKEN, text_xml(openid, "gh_bench", text, created_at=created, msg_id=msg_id),
                             crypto=MessageCrypto(TOKEN, AES_KEY, APPID), openid=openid)
    return "&".join(f"{k}={v}" for k, v in request.query.items()), request.body.encode()


async def listen(http: aiohttp.ClientSession, url: str, token: str, arrived: dict[str, list[float]],
                 ready: asyncio.Event) -> None:
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=aiohttp.ClientTimeout()) as r:
        assert r.status == 200, await r.text()
        ready.set()
        async for raw in r.content:
            line = raw.decode()
            if line.startswith("data: "):
                item = json.loads(line[6:])
                if item.get("state") == "new":
                    arrived.setdefault(item["text"], []).append(time.perf_counter())


async def run(args: argparse.Namespace) -> None:
    port = free_port()
    await create_store(args.store)
    env = {**os.environ, "ZTC_BENCH_RUN": bench_name().rsplit("_", 1)[-1]}
    log_path = Path(args.log or f"/tmp/bench_live_{args.store}.log")
    log_file = log_path.open("w")
    print(f"server log (INFO and above): {log_path}", flush=True)
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--store", args.store],
                              stdout=subprocess.PIPE, stderr=log_file, env=env, text=True)
    try:
        info = json.loads(await asyncio.to_thread(server.stdout.readline))  # type: ignore[union-attr]
        await drive(args, port, info)
    finally:
        server.terminate()
        server.wait()
        log_file.close()
        await drop_store(args.store)
    log_summary(log_path)


LOG_SIGNS = {"past the reply deadline (success, kept in the late journal)": "past the",
             "handler failures": "wechat handler failed", "late replays failed again": "failed again",
             "late messages given up": "given up", "not kept past the deadline": "not kept",
             "store unavailable (503)": "a store is unavailable"}


def log_summary(path: Path) -> None:
    """What the server's log says happened to messages (how many of each kind of line)."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    counts = {label: sum(sign in line for line in lines) for label, sign in LOG_SIGNS.items()}
    print("server log: " + ", ".join(f"{label}: {n}" for label, n in counts.items()))


async def drive(args: argparse.Namespace, port: int, info: dict) -> None:
    base = f"http://127.0.0.1:{port}"
    rng = random.Random(11)
    users = [f"oBenchLive{u:05d}" for u in range(args.users)]
    asked = [users[i % args.users] for i in range(args.questions)]
    rng.shuffle(asked)
    questions = [(openid, f"{TOPICS[i % len(TOPICS)]}（第{i}问）", 7_000_000_000 + i) for i, openid in enumerate(asked)]
    duration = args.minutes * 60 * args.scale
    sent: dict[str, float] = {}
    replies: list[float] = []
    posts = 0
    retries = 0
    arrived: dict[str, list[float]] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as http:
        ready = asyncio.Event()
        listener = asyncio.create_task(listen(http, f"{base}/api/v1/live-sessions/{info['session']}/stream",
                                              info["token"], arrived, ready))
        await asyncio.wait_for(ready.wait(), 30)

        async def post(query: str, body: bytes) -> str:
            nonlocal posts
            posts += 1
            started = time.perf_counter()
            async with http.post(f"{base}/wechat?{query}", data=body) as r:
                text = await r.text()
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}: {text[:200]}")
            replies.append(time.perf_counter() - started)
            return text

        joined = {u: asyncio.Lock() for u in users}
        done_joining: set[str] = set()

        async def one(n: int, openid: str, text: str, msg_id: int, due: float) -> None:
            nonlocal retries
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            async with joined[openid]:  # a user's first message joins with the keyword
                if openid not in done_joining:
                    await post(*request_for(openid, info["keyword"], 6_000_000_000 + n, 1764000000 + n))
                    done_joining.add(openid)
            request = request_for(openid, text, msg_id, 1764100000 + n)
            sent[text] = time.perf_counter()
            roll = rng.random()
            if roll < args.retries / 2:  # WeChat retries while the first is still being handled
                retries += 1
                await asyncio.gather(post(*request), post(*request))
                return
            await post(*request)
            if roll < args.retries:  # … or after its 5 s timeout
                retries += 1
                await asyncio.sleep(rng.uniform(0.5, 3))
                await post(*request)

        start = time.perf_counter()
        gaps = sorted(rng.uniform(0, duration) for _ in questions)
        await asyncio.gather(*(one(n, o, t, m, start + gaps[n]) for n, (o, t, m) in enumerate(questions)))
        elapsed = time.perf_counter() - start
        # a reply past WeChat's deadline is `success` while the handling goes on: wait for the server
        stored: list[str] = []
        quiet_since = time.perf_counter()
        while len(stored) < len(questions) and time.perf_counter() - quiet_since < 15:
            await asyncio.sleep(1)
            async with http.get(f"{base}/api/v1/live-sessions/{info['session']}/questions",
                                headers={"Authorization": f"Bearer {info['token']}"}) as r:
                now_stored = [q["text"] for q in (await r.json())["items"]]
            if len(now_stored) > len(stored):
                quiet_since = time.perf_counter()
            stored = now_stored
        await asyncio.sleep(1)
        listener.cancel()
    report(args, questions, sent, arrived, stored, replies, retries, posts, elapsed)


def _pct(values: list[float], p: float) -> float:
    return sorted(values)[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


def report(args: argparse.Namespace, questions: list, sent: dict[str, float], arrived: dict[str, list[float]],
           stored: list[str], replies: list[float], retries: int, posts: int, elapsed: float) -> None:
    texts = [t for _, t, _ in questions]
    kept = set(stored)
    lost = [(o, t, m) for o, t, m in questions if t not in kept]
    doubled = len(stored) - len(set(stored))
    on_screen = [arrived[t][0] - sent[t] for t in texts if t in arrived]
    doubled_on_screen = sum(1 for t in texts if len(arrived.get(t, ())) > 1)
    print(f"store: {args.store}; {len(texts)} questions from {len(set(o for o, _, _ in questions))} users "
          f"in {elapsed:.1f} s (10 min scaled by {args.scale}), {retries} retried by 'WeChat'")
    print(f"sent: {len(sent)} questions ({posts} POSTs to /wechat: joins and retries included)")
    print(f"stored: {len(stored)}  lost (not stored once the server was quiet for 15 s): {len(lost)}  doubled: {doubled}")
    for openid, text, msg_id in lost[:20]:
        print(f"  lost: MsgId {msg_id} from …{openid[-5:]}: {text}")
    print(f"host stream: received {len(on_screen)}  missing {len(texts) - len(on_screen)}  "
          f"doubled {doubled_on_screen}")
    print(f"passive reply: p50 {statistics.median(replies) * 1000:.0f} ms  p99 {_pct(replies, .99) * 1000:.0f} ms")
    if on_screen:
        print(f"time to the host's stream: p50 {statistics.median(on_screen) * 1000:.0f} ms  "
              f"p99 {_pct(on_screen, .99) * 1000:.0f} ms  max {max(on_screen) * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--scale", type=float, default=1.0, help="the 10 minutes compressed by this factor")
    parser.add_argument("--retries", type=float, default=0.2, help="share of questions WeChat sends again")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--log", help="where the server's log goes (default /tmp/bench_live_<store>.log)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve, args.store))
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
