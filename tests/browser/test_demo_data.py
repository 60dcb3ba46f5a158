"""The demo data in config/demo/ is what the issue promises: every town with a 代表之家, the
specialised stations, fictional deputies of all five levels, and someone on duty at every hour."""
from __future__ import annotations

import csv
from collections import Counter
from datetime import date, datetime, time, timedelta

from bot.core.people import DEPUTY_LEVELS, DutyShift
from bot.core.tickets import CATEGORIES
from bot.settings import CONFIG_DIR

DEMO = CONFIG_DIR / "demo"
TOWNS = {"松陵街道", "江陵街道", "八坼街道", "横扇街道", "同里镇", "平望镇", "黎里镇", "盛泽镇", "七都镇",
         "震泽镇", "桃源镇", "开发区", "太湖新城", "东太湖度假区"}


def rows(name: str) -> list[dict[str, str]]:
    with (DEMO / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def hhmm(value: str) -> time:
    return time.max if value == "24:00" else time.fromisoformat(value)


def test_every_town_has_one_home_and_several_stations() -> None:
    stations = rows("stations.csv")
    homes = Counter(s["town"] for s in stations if s["kind"] == "家")
    assert set(homes) == TOWNS and set(homes.values()) == {1}
    liaison = Counter(s["town"] for s in stations if s["kind"] == "站")
    assert all(liaison[town] >= 2 for town in TOWNS)
    assert sum(1 for s in stations if s["kind"] == "点") >= 3
    assert len({s["code"] for s in stations}) == len(stations)


def test_specialised_stations_and_places() -> None:
    stations = {s["code"]: s for s in rows("stations.csv")}
    specialised = {
        (s["town"], c) for s in stations.values() for c in s["specialties"].split(";") if c
    }
    for town, category in [("开发区", "劳动和社会保障"), ("七都镇", "农村农业"), ("七都镇", "民政"),
                           ("盛泽镇", "政法"), ("八坼街道", "卫生计生")]:
        assert (town, category) in specialised
    assert {c for _, c in specialised} <= set(CATEGORIES)
    assert {"环境保护", "农村农业"} <= {c for _, c in specialised}
    places = Counter(p for s in stations.values() for p in s["places"].split(";") if p)
    # routing by place must be unambiguous
    assert places and max(places.values()) == 1


def test_deputies_are_fictional_and_cover_all_levels() -> None:
    stations = {s["code"] for s in rows("stations.csv")}
    deputies = rows("deputies.csv")
    assert {d["level"] for d in deputies} == set(DEPUTY_LEVELS)
    assert all("某" in d["name"] and d["phone"].startswith("1380000") for d in deputies)
    per_station = Counter(d["station_code"] for d in deputies)
    assert set(per_station) == stations and min(per_station.values()) >= 2


def test_every_station_has_someone_on_duty_at_every_hour_of_the_week() -> None:
    home_of = {d["code"]: d["station_code"] for d in rows("deputies.csv")}
    shifts = []
    for r in rows("duty.csv"):
        assert home_of[r["deputy_code"]] == r["station_code"]
        day: date | int = date.fromisoformat(r["day"]) if "-" in r["day"] else int(r["day"])
        shifts.append(DutyShift(r["station_code"], r["deputy_code"], day, hhmm(r["start"]), hhmm(r["end"])))
    monday = datetime(2026, 6, 1)  # a Monday
    for station in {s["code"] for s in rows("stations.csv")}:
        mine = [s for s in shifts if s.station_code == station]
        at = monday
        while at < monday + timedelta(days=7):
            assert any(s.covers(at) for s in mine), (station, at)
            at += timedelta(minutes=30)
        assert any(s.covers(monday + timedelta(days=6, hours=23, minutes=59, seconds=59)) for s in mine)
