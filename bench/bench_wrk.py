"""Webhook throughput under wrk: the full passive-reply path of /wechat against a bare aiohttp
handler, each server pinned to one core (taskset), the load generator (wrk, not Python) on another.

The requests are real WeChat callbacks: signed, AES-encrypted (safe mode), many users with unique
MsgIds, in a realistic mix — chat questions, 我的诉求, 帮助, and a quarter of the users walking the
report form to 是 (a ticket filed, the deputy told through the outbox and a fake WeChat API).
One user's messages keep their order and are far apart in the stream (no self-contention).

Per store (SQLite + in-process key-value store; PostgreSQL + Redis with a database and key prefix
of the run's own, removed after) and per repetition: the bare handler as fast as it answers, the
full path as fast as it answers (a fresh server, warmed up), then the full path paced at 10 % of
that repetition's bare rate (wrk's per-connection think time; closed loop, so it understates
queueing). Prints every run and a table of ranges; numbers, not pass/fail. Installs wrk from
Debian when it is missing.

    .venv/bin/python bench/bench_wrk.py [--store sqlite|postgres|both] [--repeat 3]
        [--duration 10] [--connections 50] [--server-core 1] [--wrk-core 0] [--loop uvloop|asyncio]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from bench_webhook import (  # noqa: E402 - the servers and stores are the older bench's
    AES_KEY,
    APPID,
    TOKEN,
    create_store,
    drop_store,
    free_port,
    serve_bare,
    serve_full,
    wait_ready,
)

LUA = BENCH / "wrk_wechat.lua"
REPORTER = ("我们村口的路灯坏了一个星期了", "松陵街道 江村", "晚上路上一片漆黑，老人出门很不方便",
            "13912345678", "是", "我的诉求")
ASKER = ("这个平台能做什么", "帮助", "我的诉求", "谢谢")
CHATTER = ("你好", "人大代表什么时候接待群众", "我的诉求", "帮助", "再见")
MIX = (REPORTER, ASKER, CHATTER, ASKER)  # user i says MIX[i % 4]


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk missing: installing the Debian package", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, check=True)
    return shutil.which("wrk") or "wrk"


def write_requests(path: Path, messages: int, tag: str, msg_base: int) -> int:
    """`messages` callbacks (one a line for the Lua script); user u's j-th message sits at
    j * users + u, so a user's next message is a whole round of users later."""
    from wechatpy.crypto import WeChatCrypto

    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    per_user = sum(len(s) for s in MIX) / len(MIX)
    users = max(4, int(messages / per_user) + 1)
    rounds = max(len(s) for s in MIX)
    timestamp = str(int(time.time()))
    lines, n = [], 0
    for j in range(rounds):
        for u in range(users):
            script = MIX[u % len(MIX)]
            if j >= len(script):
                continue
            openid = f"o{tag}{u:06d}"
            xml = (f"<xml><ToUserName><![CDATA[gh_bench]]></ToUserName><FromUserName><![CDATA[{openid}]]>"
                   f"</FromUserName><CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                   f"<Content><![CDATA[{script[j]}]]></Content><MsgId>{msg_base + n}</MsgId></xml>")
            nonce = str(100000 + n)
            body = crypto.encrypt_message(xml, nonce, timestamp)
            msg_signature = body.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
            query = (f"timestamp={timestamp}&nonce={nonce}&openid={openid}"
                     f"&encrypt_type=aes&msg_signature={msg_signature}")
            lines.append(query + "\t" + body.replace("\n", ""))
            n += 1
    path.write_text("\n".join(lines) + "\n")
    return n


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_wrk(wrk: str, core: int, port: int, file: Path, *, duration: float, connections: int,
            threads: int, delay_ms: float = 0.0, server_pid: int | None = None) -> dict[str, float]:
    env = {**os.environ, "WRK_FILE": str(file), "WRK_THREADS": str(threads), "WRK_DELAY_MS": f"{delay_ms:.3f}"}
    cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
    out = subprocess.run(
        ["taskset", "-c", str(core), wrk, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(duration))}s",
         "--timeout", "10s", "-s", str(LUA), f"http://127.0.0.1:{port}"],
        env=env, capture_output=True, text=True)
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    r = json.loads(line[len("WRKJSON "):])
    r["rate"] = r["requests"] / (r["duration_us"] / 1e6)
    # CPU per message: what a shared machine's load changes least (wall time is shared, CPU is not)
    r["cpu_ms"] = (cpu_seconds(server_pid) - cpu_before) * 1000 / max(1, r["requests"]) if server_pid else 0.0
    r["busy"] = (cpu_seconds(server_pid) - cpu_before) / (r["duration_us"] / 1e6) if server_pid else 0.0
    return r


def run_id(*, baseline: bool) -> str:
    """The database and key prefix of a server: the baseline tree's are its own (its schema may be
    older than this tree's)."""
    return f"{os.getpid()}{'base' if baseline else ''}"


class Server:
    """`bench_wrk.py --serve KIND` in a child process pinned to one core; `tree`: the source tree
    the full path runs from (another checkout, for before/after in one run)."""

    def __init__(self, kind: str, store: str, core: int, loop: str, tree: Path | None = None,
                 up_days: float = 0) -> None:
        self.kind, self.store, self.core = kind, store, core
        self.port = free_port()
        env = {**os.environ, "ZTC_BENCH_RUN": run_id(baseline=tree is not None)}
        tree_args = ["--tree", str(tree)] if tree else []
        self.proc = subprocess.Popen(
            ["taskset", "-c", str(core), sys.executable, __file__, "--serve", kind, "--port", str(self.port),
             "--store", store, "--up-days", str(up_days), "--loop", loop, *tree_args], cwd=tree or BENCH.parent, env=env)

    async def __aenter__(self) -> Server:
        await wait_ready(self.port, self.proc)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(20)


async def one_repetition(args: argparse.Namespace, wrk: str, store: str, rep: int, tmp: Path) -> dict[str, dict]:
    run: dict[str, Any] = dict(duration=args.duration, connections=args.connections, threads=args.wrk_threads)
    tag = f"{os.getpid() % 10000:04d}{rep}"
    msg_base = 10_000_000_000 * (rep + 1)
    warm, load, paced = tmp / f"warm{rep}.txt", tmp / f"load{rep}.txt", tmp / f"paced{rep}.txt"
    write_requests(warm, 1500, tag + "w", msg_base)
    write_requests(load, args.messages, tag + "l", msg_base + 1_000_000)
    out: dict[str, dict] = {}
    async with Server("bare", store, args.server_core, args.loop) as bare:
        run_wrk(wrk, args.wrk_core, bare.port, warm, **{**run, "duration": 2})
        out["bare"] = run_wrk(wrk, args.wrk_core, bare.port, load, **run, server_pid=bare.proc.pid)
    if args.baseline_tree:
        base_load = tmp / f"base{rep}.txt"
        write_requests(base_load, args.messages, tag + "b", msg_base + 3_000_000)
        async with Server("full", store, args.server_core, args.loop, args.baseline_tree, args.up_days) as base:
            run_wrk(wrk, args.wrk_core, base.port, warm, **{**run, "duration": 3})
            out["before"] = run_wrk(wrk, args.wrk_core, base.port, base_load, **run, server_pid=base.proc.pid)
    async with Server("full", store, args.server_core, args.loop, up_days=args.up_days) as full:
        run_wrk(wrk, args.wrk_core, full.port, warm, **{**run, "duration": 3})
        out["full"] = run_wrk(wrk, args.wrk_core, full.port, load, **run, server_pid=full.proc.pid)
        target = out["bare"]["rate"] * 0.10
        write_requests(paced, int(target * args.duration * 1.3) + 100, tag + "p", msg_base + 2_000_000)
        out["paced"] = run_wrk(wrk, args.wrk_core, full.port, paced, **run, server_pid=full.proc.pid,
                               delay_ms=args.connections / target * 1000)
        out["paced"]["target"] = target
    return out


def fmt_range(values: list[float], digits: int = 0) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.{digits}f}" if round(lo, digits) == round(hi, digits) else f"{lo:.{digits}f}–{hi:.{digits}f}"


def print_run(store: str, rep: int, out: dict[str, dict]) -> None:
    for name, r in out.items():
        extra = f" (target {r['target']:.0f}/s)" if "target" in r else ""
        print(f"  [{store} #{rep + 1}] {name:6} {r['rate']:8.0f} msg/s  p50 {r['p50_us'] / 1000:7.1f} ms  "
              f"p99 {r['p99_us'] / 1000:7.1f} ms  max {r['max_us'] / 1000:7.1f} ms  CPU {r['cpu_ms']:.2f} ms/msg "
              f"(server busy {r['busy']:.0%})  non-200 {r['bad_status']}  "
              f"errors {r['connect_errors'] + r['read_errors'] + r['write_errors'] + r['timeouts']}  "
              f"`success` {r['success_bodies']}  wraps {r['wraps']}{extra}", flush=True)


def print_table(results: dict[str, list[dict[str, dict]]], args: argparse.Namespace) -> None:
    print()
    print(f"{args.connections} connections, server pinned to core {args.server_core}, wrk to core "
          f"{args.wrk_core}, both on {args.loop}, {args.duration:g} s a run, {args.repeat} repetitions (ranges: min–max), "
          f"{os.cpu_count()} cores on the machine (shared); key-value store up {args.up_days:g} days")
    head = (f"{'store':18}{'server':34}{'msg/s':>14}{'p50 ms':>13}{'p99 ms':>14}{'CPU ms/msg':>12}"
            f"{'full/bare':>14}{'by CPU':>14}")
    print(head)
    print("-" * len(head))
    for store, reps in results.items():
        label = {"sqlite": "SQLite + memory", "postgres": "PostgreSQL+Redis"}[store]
        ratios = [r["full"]["rate"] / r["bare"]["rate"] * 100 for r in reps]
        paced_ratio = [r["paced"]["rate"] / r["bare"]["rate"] * 100 for r in reps]
        by_cpu = [r["bare"]["cpu_ms"] / r["full"]["cpu_ms"] * 100 for r in reps if r["full"]["cpu_ms"]]
        before = []
        if "before" in reps[0]:
            before = [("full path, before (baseline tree)", "before",
                       fmt_range([r["before"]["rate"] / r["bare"]["rate"] * 100 for r in reps], 1) + " %",
                       fmt_range([r["bare"]["cpu_ms"] / r["before"]["cpu_ms"] * 100 for r in reps], 1) + " %")]
        rows = (("bare aiohttp handler", "bare", "", ""), *before,
                ("full path, as fast as it answers", "full", fmt_range(ratios, 1) + " %",
                 fmt_range(by_cpu, 1) + " %" if by_cpu else ""),
                ("full path paced at 10 % of bare", "paced", fmt_range(paced_ratio, 1) + " %", ""))
        for name, key, ratio, cpu_ratio in rows:
            rates = [r[key]["rate"] for r in reps]
            p50 = [r[key]["p50_us"] / 1000 for r in reps]
            p99 = [r[key]["p99_us"] / 1000 for r in reps]
            cpu = [r[key]["cpu_ms"] for r in reps]
            print(f"{label:18}{name:34}{fmt_range(rates):>14}{fmt_range(p50, 1):>13}{fmt_range(p99, 1):>14}"
                  f"{fmt_range(cpu, 2):>12}{ratio:>14}{cpu_ratio:>14}")
    print("targets (issue 12): full ≥ 10 % of bare; p99 ≤ 50 ms at 50 connections. `by CPU`: bare's CPU per "
          "message over the full path's — the throughput ratio a core of its own would give")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--messages", type=int, default=30000, help="distinct messages a saturating run can send")
    parser.add_argument("--server-core", type=int, default=1)
    parser.add_argument("--wrk-core", type=int, default=0)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--baseline-tree", type=Path, help="also run the full path from this source tree "
                        "(e.g. `git archive main | tar -x -C DIR`): before/after in one run")
    parser.add_argument("--up-days", type=float, default=2.0, help="how long the server's key-value store "
                        "has been up (0: just started; the first 10 min read each message's record)")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop", help="the event loop of both "
                        "servers (uvloop: what `zhitongche serve` runs)")
    parser.add_argument("--serve", choices=["bare", "full"], help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "bare":
        return await serve_bare(args.port)
    if args.serve == "full":
        if args.tree:  # before anything imports the application's packages
            sys.path.insert(0, str(args.tree.resolve()))
        return await serve_full(args.port, args.store, args.up_days)

    wrk = ensure_wrk()
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    results: dict[str, list[dict[str, dict]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for store in stores:
            await create_store(store)
            if args.baseline_tree:
                await create_store(store, run_id(baseline=True))
            try:
                results[store] = []
                for rep in range(args.repeat):
                    out = await one_repetition(args, wrk, store, rep, Path(tmp))
                    print_run(store, rep, out)
                    results[store].append(out)
            finally:
                await drop_store(store)
                if args.baseline_tree:
                    await drop_store(store, run_id(baseline=True))
    print_table(results, args)


if __name__ == "__main__":
    if "--serve" in sys.argv and sys.argv[sys.argv.index("--loop") + 1] == "uvloop":  # Server passes --loop
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
