"""The console's read side on SQLite and PostgreSQL: tabs, filters, search, counts and rates."""
from __future__ import annotations

from datetime import timedelta

from seed import NOW, seed

from storage.console_queries import ConsoleQueries, TicketQuery


async def test_tabs_filters_and_search(sql_uow_factory) -> None:
    numbers = await seed(sql_uow_factory)
    q = ConsoleQueries(sql_uow_factory.engine)

    async def found(**kw) -> set[int]:
        return {row.number for row in (await q.tickets(TicketQuery(**kw), NOW)).items}

    assert await found(tab="waiting") == {numbers["waiting"]}
    assert await found(tab="late") == {numbers["late"]}  # assigned two days ago, not accepted
    assert await found(tab="assigned") == {numbers["late"], numbers["assigned"], numbers["other_town"]}
    assert len(await found(tab="resolved")) == 6
    assert await found(station_codes=["QD-01"]) == {numbers["other_town"]}
    assert await found(station_codes=[]) == set()
    assert await found(q="路灯") == {numbers["waiting"]}
    assert await found(q=str(numbers["late"])) == {numbers["late"]}
    assert await found(q="%") == set()  # a wildcard is a character, not "everything"
    assert await found(category="环境保护") == {numbers["late"]}
    assert await found(rating=2) == {numbers["resolved4"], numbers["resolved5"]}
    assert len(await found(rating=0)) == 4
    assert await found(since=(NOW - timedelta(days=1)).date(), until=NOW.date()) == {
        numbers["waiting"], numbers["assigned"], numbers["other_town"]}

    page = await q.tickets(TicketQuery(per_page=4, page=3), NOW)
    assert page.total == 10 and page.pages == 3 and len(page.items) == 2
    first = (await q.tickets(TicketQuery(q="路灯"), NOW)).items[0]
    assert (first.station_name, first.town, first.deputy_name) == ("盛泽镇东方社区联络站", "盛泽镇", "")


async def test_counts_rates_and_ages(sql_uow_factory) -> None:
    await seed(sql_uow_factory)
    q = ConsoleQueries(sql_uow_factory.engine)
    everything = TicketQuery()
    assert await q.counts("town", everything, NOW) == [("盛泽镇", "盛泽镇", 9), ("七都镇", "七都镇", 1)]
    assert (await q.counts("station", everything, NOW))[0] == ("SZ-01", "盛泽镇东方社区联络站", 8)
    assert dict((k, n) for k, _, n in await q.counts("status", everything, NOW)) == {
        "resolved": 6, "assigned": 2, "filed": 1, "accepted": 1}
    months = await q.counts("month", everything, NOW)
    assert [k for k, _, _ in months] == ["2026-11", "2026-12"]

    rates = {r.key: r for r in await q.rates("station", everything, NOW)}
    sz = rates["SZ-01"]
    # 7 tickets due for a response (6 accepted + 1 assigned 2 days ago); 5 of them within 24 h
    assert sz.samples == {"response": 7, "on_time": 6, "satisfaction": 6}
    assert sz.response == round(5 / 7, 4)
    assert sz.on_time == round(4 / 6, 4)
    assert sz.satisfaction == round(4 / 6, 4)
    assert rates["QD-01"].response is None  # one ticket: below the minimum sample, not ranked
    ranked = await q.rates("deputy", everything, NOW)
    assert ranked[0].key == "D101" and ranked[0].label == "沈建国"

    ages = dict(await q.open_by_age(everything, NOW))
    assert ages == {1: 2, 3: 2, 7: 0, 15: 0, 30: 0, 0: 0}


async def test_a_search_by_words_counts_every_match_on_every_page(sql_uow_factory) -> None:
    await seed(sql_uow_factory)
    q = ConsoleQueries(sql_uow_factory.engine)
    pages = [await q.tickets(TicketQuery(q="已办结的诉求", per_page=4, page=n), NOW) for n in (1, 2, 3)]
    assert [(len(p.items), p.total) for p in pages] == [(4, 6), (2, 6), (0, 6)]  # page 3: past the end, still 6
    assert {i.summary for p in pages for i in p.items} == {f"已办结的诉求{i}" for i in range(6)}
    assert (await q.tickets(TicketQuery(q="¹"), NOW)).total == 0  # a word, not a ticket number
