"""The staff console's queries on a district-sized PostgreSQL database: 100,000 tickets over 150
stations and two years, with their timelines.

Creates a database of its own (dropped afterwards, unless --keep), migrates it to head, fills it
with COPY, then times every query the dashboard runs and the ticket list under each filter (page 1
and a deep page, search by number and by words), for a district account (every station) and a
town account (its 10 stations). Prints the median and p95 per query, measured in the server's
process around the same ConsoleQueries calls the pages make (database round trips included, HTTP
and template rendering not). Not a test: the numbers depend on the machine.

    .venv/bin/python bench/bench_console.py [--tickets 100000] [--runs 15] [--keep]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.core.tickets import CATEGORIES  # noqa: E402
from storage.console_queries import TABS, ConsoleQueries, TicketQuery  # noqa: E402

PG_ADMIN = os.environ.get("ZTC_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
NOW = datetime(2026, 12, 1, 10, 0)
TOWNS = [f"{name}镇" for name in ("盛泽", "七都", "震泽", "桃源", "平望", "黎里", "汾湖", "同里", "横扇", "八坼",
                                   "铜罗", "青云", "北厍", "芦墟", "菀坪")]
STATIONS_PER_TOWN = 10
DEPUTIES_PER_STATION = 4
PROBLEMS = ["路灯坏了", "垃圾桶满了没人清", "小区门口积水", "噪音扰民", "道路坑洼", "违章搭建", "井盖松动",
            "公交站台破损", "河道有垃圾", "停车难", "养老补贴没到账", "学校门口堵车"]
SLOW_MS = 200


def _name() -> str:
    return f"ztc_bench_console_{os.getpid()}"


def _url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + f"/{name}"


# --- the data --------------------------------------------------------------------------------------
def stations() -> list[tuple[Any, ...]]:
    rows = []
    for t, town in enumerate(TOWNS):
        for i in range(STATIONS_PER_TOWN):
            rows.append((f"T{t:02d}-{i:02d}", f"{town}第{i + 1}联络站", "站" if i else "家", town, f"{town}人民路{i}号",
                         "[]", json.dumps([f"第{i}村"], ensure_ascii=False)))
    return rows


def deputies(station_rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [(f"{s[0]}-D{j}", f"代表{s[0]}{j}", "区", s[0], f"1380000{k:04d}", None)
            for k, (s, j) in enumerate((s, j) for s in station_rows for j in range(DEPUTIES_PER_STATION))]


def tickets(count: int, station_rows: list[tuple[Any, ...]], rng: random.Random
            ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Ticket rows and their timeline rows; older tickets are mostly resolved and rated."""
    ticket_rows, event_rows = [], []
    span = timedelta(days=730).total_seconds()
    created_times = sorted(NOW - timedelta(seconds=rng.random() * span) for _ in range(count))
    for n, created in enumerate(created_times, start=1001):
        station = rng.choice(station_rows)[0]
        deputy = f"{station}-D{rng.randrange(DEPUTIES_PER_STATION)}"
        age_days = (NOW - created).days
        problem = rng.choice(PROBLEMS)
        events = [(created, "filed", "citizen", "")]
        status, rating, deputy_code = "filed", None, None
        roll = rng.random()
        if roll > 0.02 or age_days > 3:
            at = created + timedelta(minutes=rng.randrange(5, 180))
            events.append((at, "assigned", "system", deputy))
            status, deputy_code = "assigned", deputy
            if rng.random() < (0.97 if age_days > 2 else 0.5):
                at += timedelta(hours=rng.choice((1, 3, 8, 20, 30, 60)))
                events.append((at, "accepted", deputy, ""))
                status = "accepted"
                if rng.random() < (0.95 if age_days > 30 else 0.4):
                    at += timedelta(days=rng.choice((1, 2, 5, 10, 14, 20, 40)))
                    events.append((at, "resolved", deputy, "已处理"))
                    status = "resolved"
                    if rng.random() < 0.6:
                        rating = rng.choice((5, 5, 5, 4, 4, 3, 2, 1))
                        events.append((at + timedelta(days=1), "rated", "citizen", str(rating)))
        first = {kind: at for at, kind, _, _ in reversed(events)}  # as storage/sql_mapping.py timeline_times
        ticket_rows.append((n, 1, f"oid-{rng.randrange(40_000):06d}", rng.choice(CATEGORIES), problem,
                            f"{station}附近", f"{problem}，已经好几天了，请尽快处理。", station, created, status,
                            deputy_code, None, False, rating, "", first.get("assigned"), first.get("accepted"),
                            first.get("resolved")))
        event_rows += [(n, seq, at, kind, actor, text) for seq, (at, kind, actor, text) in enumerate(events)]
    return ticket_rows, event_rows


TICKET_COLUMNS = ["number", "version", "citizen_openid", "category", "summary", "place", "details", "station_code",
                  "created_at", "status", "deputy_code", "phone", "share_contact", "rating", "rating_comment",
                  "assigned_at", "accepted_at", "resolved_at"]


async def fill(name: str, count: int) -> None:
    import asyncpg

    from storage.migrate import upgrade

    await asyncio.to_thread(upgrade, _url(name))
    rng = random.Random(20261201)
    station_rows = stations()
    ticket_rows, event_rows = tickets(count, station_rows, rng)
    conn = await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}")
    try:
        await conn.copy_records_to_table("stations", records=station_rows, columns=[
            "code", "name", "kind", "town", "address", "specialties", "places"])
        await conn.copy_records_to_table("deputies", records=deputies(station_rows), columns=[
            "code", "name", "level", "station_code", "phone", "openid"])
        await conn.copy_records_to_table("tickets", records=ticket_rows, columns=TICKET_COLUMNS)
        await conn.copy_records_to_table("ticket_events", records=event_rows, columns=[
            "ticket_number", "seq", "at", "kind", "actor", "text"])
        await conn.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load
    finally:
        await conn.close()


# --- the timing -----------------------------------------------------------------------------------
Query = Callable[[], Awaitable[Any]]


def queries(q: ConsoleQueries, codes: list[str] | None, deep_page: int, number: int) -> list[tuple[str, Query]]:
    def base(**kw: Any) -> TicketQuery:
        return TicketQuery(station_codes=codes, **kw)

    everything = base()
    since, until = date(2026, 6, 1), date(2026, 8, 31)
    found: list[tuple[str, Query]] = []
    for by in ("town", "station", "category", "status", "month"):
        found.append((f"看板 按{by}计数", lambda by=by: q.counts(by, everything, NOW)))
    found.append(("看板 在办工单按时长", lambda: q.open_by_age(everything, NOW)))
    for by in ("station", "deputy"):
        found.append((f"看板 三率 按{by}", lambda by=by: q.rates(by, everything, NOW)))
    for tab in TABS[:-1]:
        found.append((f"分类计数 {tab}", lambda tab=tab: q.count(base(tab=tab), NOW)))
    lists = {f"列表 {tab}": base(tab=tab) for tab in TABS}
    lists |= {
        "列表 类别": base(category=CATEGORIES[0]),
        "列表 状态": base(status="accepted"),
        "列表 日期范围": base(since=since, until=until),
        "列表 评价": base(rating=1),
        "列表 未评价": base(rating=0),
        "列表 代表": base(deputy="T00-01-D1"),
        "列表 组合(类别+日期+已办结)": base(tab="resolved", category=CATEGORIES[1], since=since, until=until),
        "搜索 工单号": base(q=str(number)),
        "搜索 常见词": base(q="积水"),
        "搜索 罕见词": base(q="找不到的词"),
    }
    for label, query in lists.items():
        found.append((f"{label} 第1页", lambda query=query: q.tickets(query, NOW)))
    for label in ("列表 all", "列表 resolved", "列表 类别"):
        query = lists[label]
        deep = TicketQuery(**{**query.__dict__, "page": deep_page})
        found.append((f"{label} 第{deep_page}页", lambda deep=deep: q.tickets(deep, NOW)))
    return found


async def time_all(url: str, runs: int) -> list[tuple[str, str, float, float, int]]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, pool_size=2)
    q = ConsoleQueries(engine)
    town_codes = [f"T01-{i:02d}" for i in range(STATIONS_PER_TOWN)]
    results = []
    try:
        for scope, codes, deep in (("全区", None, 2000), ("七都镇", town_codes, 200)):
            for label, run in queries(q, codes, deep, number=51_234):
                await run()  # warm: the first run pays for plans and cold pages
                samples = []
                for _ in range(runs):
                    started = time.perf_counter()
                    result = await run()
                    samples.append((time.perf_counter() - started) * 1000)
                size = result.total if hasattr(result, "total") else len(result) if isinstance(result, list) else result
                p95 = statistics.quantiles(samples, n=20)[-1] if len(samples) >= 2 else samples[0]
                results.append((scope, label, statistics.median(samples), p95, int(size)))
    finally:
        await engine.dispose()
    return results


def show(results: list[tuple[str, str, float, float, int]], count: int, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"控制台查询：{count:,} 件工单，{len(TOWNS) * STATIONS_PER_TOWN} 个联络站，两年（填充 {seconds:.0f} 秒）")
    for column in ("范围", "查询", "中位数 ms", "p95 ms", "结果数"):
        table.add_column(column, justify="right" if "ms" in column or column == "结果数" else "left")
    for scope, label, median, p95, size in results:
        style = "bold red" if p95 > SLOW_MS else ""
        table.add_row(scope, label, f"{median:.1f}", f"{p95:.1f}", f"{size:,}", style=style)
    Console().print(table)
    worst = max(results, key=lambda r: r[3])
    print(f"slowest p95: {worst[3]:.1f} ms ({worst[0]} {worst[1]}); "
          f"median of medians: {statistics.median(r[2] for r in results):.1f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    args = parser.parse_args()
    import asyncpg

    name = _name()
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        started = time.perf_counter()
        await fill(name, args.tickets)
        filled = time.perf_counter() - started
        show(await time_all(_url(name), args.runs), args.tickets, filled)
    finally:
        if args.keep:
            print(f"kept database {name}")
        else:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
