"""Routing policy and duty roster: pure functions, table-driven."""
from __future__ import annotations

from datetime import date, datetime, time

import pytest

from bot.core.people import DISTRICT_QUEUE, DutyShift, Station, StationKind
from handlers.roster import on_duty
from handlers.routing import choose_deputy, choose_station, normalize_place

HOME, STATION, POINT = StationKind.HOME, StationKind.STATION, StationKind.POINT

STATIONS = (
    Station("LL-HOME", "黎里镇代表之家", HOME, "黎里镇", places=("黎里社区", "东村")),
    Station("LL-DC", "东村代表联络站", STATION, "黎里镇", places=("东村", "西村")),
    Station("LL-DCN", "东村北组联系点", POINT, "黎里镇", places=("东村北组",)),
    Station("LL-LAB", "黎里劳动联络站", STATION, "黎里镇", specialties=("劳动和社会保障",)),
    Station("SZ-HOME", "盛泽镇代表之家", HOME, "盛泽镇", places=("盛泽",)),
    Station("SZ-LAW", "盛泽法律调解联络站", STATION, "盛泽镇", specialties=("政法",)),
    Station("SZ-LAWP", "盛泽法律服务点", POINT, "盛泽镇", specialties=("政法",)),
    Station("SZ-DC", "盛泽东村联络站", STATION, "盛泽镇", places=("东村",)),  # same village name, other town
    Station("TL-HOME", "同里镇代表之家", HOME, "同里镇", places=("肖甸湖村",)),
    Station("PW-HOME", "平望镇代表之家", HOME, "平望镇", places=("梅堰村",)),
    Station("PW-MY", "梅堰社区联络站", STATION, "平望镇", places=("梅堰社区",)),
    Station("QD-FISH", "七都渔民安置联络站", STATION, "七都镇", specialties=("农村农业",)),  # no 家 in 七都
    Station("SL-HOME", "松陵街道代表之家", HOME, "松陵街道"),
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("梅堰村", "梅堰"),
        ("梅堰社区", "梅堰"),
        ("松陵街道", "松陵"),
        ("黎里镇", "黎里"),
        ("南麻社区居委会", "南麻"),
        (" 东 村 ", "东村"),  # two characters stay whole
        ("新村", "新村"),
        ("村", "村"),  # never strips a name down to nothing
        ("开发区", "开发区"),
        ("", ""),
    ],
)
def test_normalize_place(name: str, expected: str) -> None:
    assert normalize_place(name) == expected


@pytest.mark.parametrize(
    ("qr", "place", "town", "category", "expected", "why"),
    [
        # 1. the QR station wins over everything, when it exists
        ("SZ-LAW", "黎里镇东村", "黎里镇", "城乡建设", "SZ-LAW", "qr station"),
        ("NOPE", "黎里镇东村", "", "城乡建设", "LL-DC", "unknown qr station falls through"),
        ("", "黎里镇东村", "", "城乡建设", "LL-DC", "empty qr code ignored"),
        # 2. the named place, substring either way, ignoring suffixes; 站 over 家
        (None, "东村", "黎里镇", "城乡建设", "LL-DC", "站 preferred over 家 listing the same village"),
        (None, "黎里镇东村村口的路灯", "", "城乡建设", "LL-DC", "place inside a longer text"),
        (None, "东村北组", "", "城乡建设", "LL-DC", "站 before 点 even when the 点 is more specific"),
        (None, "西村村委会门口", "", "其他", "LL-DC", "suffixes ignored"),
        (None, "黎里社区", "", "其他", "LL-HOME", "a community spelled like its town: town level, the 家"),
        (None, "梅堰", "", "其他", "PW-MY", "citizen names less than the station lists"),
        (None, "梅堰村", "", "其他", "PW-MY", "村/社区 suffix ignored both sides; 站 wins"),
        (None, "肖甸湖", "", "其他", "TL-HOME", "a 家 that lists villages"),
        (None, "东村", "盛泽镇", "其他", "SZ-DC", "same village name: the citizen's town decides"),
        (None, "东村", "盛泽", "其他", "SZ-DC", "town named without its suffix"),
        # 3. the specialised station for the category in the town
        (None, "某某路", "盛泽镇", "政法", "SZ-LAW", "specialised 站 preferred over 点"),
        (None, "盛泽镇舜湖路", "", "政法", "SZ-LAW", "naming the town is no place match, even if the 家 lists it"),
        (None, "盛泽镇舜湖路", "", "其他", "SZ-HOME", "…and the 家 takes the rest"),
        (None, "黎里镇的厂里", "", "劳动和社会保障", "LL-LAB", "town derived from the place text"),
        (None, "七都镇", "", "农村农业", "QD-FISH", "specialised station, town from the place"),
        # 4. the town's 代表之家
        (None, "某某路", "盛泽镇", "城乡建设", "SZ-HOME", "no specialty for the category"),
        (None, "", "松陵", "其他", "SL-HOME", "town only"),
        (None, "松陵街道某小区", "", "其他", "SL-HOME", "街道 town from the place"),
        # 5. the district queue
        (None, "七都镇", "", "城乡建设", DISTRICT_QUEUE, "town without 家 nor specialty"),
        (None, "不知道哪里", "", "其他", DISTRICT_QUEUE, "nothing known"),
        (None, "", "", "其他", DISTRICT_QUEUE, "empty"),
        (None, "某某路", "吴中区", "其他", DISTRICT_QUEUE, "unknown town"),
        (None, "村", "", "其他", DISTRICT_QUEUE, "one character matches nothing"),
    ],
)
def test_choose_station(qr: str | None, place: str, town: str, category: str, expected: str, why: str) -> None:
    assert choose_station(STATIONS, qr_station_code=qr, place=place, town=town, category=category) == expected, why


def test_choose_station_without_stations() -> None:
    assert choose_station([], qr_station_code="X", place="东村", town="黎里", category="其他") == DISTRICT_QUEUE


@pytest.mark.parametrize(
    ("on_duty_codes", "counts", "last", "expected"),
    [
        ([], {}, None, None),
        (["D1"], {}, None, "D1"),
        (["D1", "D2"], {"D1": 3, "D2": 1}, None, "D2"),  # fewest open tickets
        (["D1", "D2"], {"D1": 0, "D2": 1}, "D1", "D1"),  # fewest wins over round robin
        (["D1", "D2", "D3"], {}, None, "D1"),  # tie, no history: first code
        (["D1", "D2", "D3"], {}, "D1", "D2"),  # tie: the next after the last one
        (["D1", "D2", "D3"], {}, "D2", "D3"),
        (["D1", "D2", "D3"], {}, "D3", "D1"),  # wraps around
        (["D3", "D1", "D2"], {}, "D1", "D2"),  # input order does not matter
        (["D1", "D3"], {}, "D2", "D3"),  # last one is off duty: next in sorted order
        (["D1", "D2", "D3"], {"D1": 1, "D2": 2, "D3": 1}, "D1", "D3"),  # round robin among the tied only
        (["D1", "D2", "D3"], {"D1": 1, "D2": 2, "D3": 1}, "D3", "D1"),
        (["D1", "D1", "D2"], {}, "D1", "D2"),  # duplicates from overlapping shifts
        (["D2"], {"D2": 7}, "D2", "D2"),  # alone on duty: always them
    ],
)
def test_choose_deputy(on_duty_codes: list[str], counts: dict[str, int], last: str | None, expected: str | None) -> None:
    assert choose_deputy(on_duty_codes, counts, last) == expected


def test_round_robin_sequence_spreads_evenly() -> None:
    counts = {"D1": 0, "D2": 0, "D3": 0}
    last = None
    picks = []
    for _ in range(6):
        last = choose_deputy(list(counts), counts, last)
        assert last is not None
        counts[last] += 1
        picks.append(last)
    assert picks == ["D1", "D2", "D3", "D1", "D2", "D3"]


# --- roster ----------------------------------------------------------------------------------
def shift(station: str, deputy: str, day: date | int, start: str, end: str) -> DutyShift:
    return DutyShift(station, deputy, day, time.fromisoformat(start), time.fromisoformat(end))


ROSTER = (
    shift("S1", "D1", 1, "09:00", "12:00"),  # Mondays
    shift("S1", "D2", 1, "11:00", "17:00"),
    shift("S1", "D3", date(2026, 12, 8), "08:30", "10:00"),  # one Tuesday only
    shift("S2", "D4", 3, "09:00", "12:00"),  # Wednesdays, another station
    shift("S1", "D1", 1, "11:30", "12:30"),  # overlapping second shift of D1
)
MONDAY = date(2026, 12, 7)


@pytest.mark.parametrize(
    ("station", "at", "expected"),
    [
        ("S1", datetime(2026, 12, 7, 8, 59), []),
        ("S1", datetime(2026, 12, 7, 9, 0), ["D1"]),  # start is inclusive
        ("S1", datetime(2026, 12, 7, 11, 45), ["D1", "D2"]),  # overlap, no duplicates
        ("S1", datetime(2026, 12, 7, 12, 15), ["D1", "D2"]),
        ("S1", datetime(2026, 12, 7, 17, 0), []),  # end is exclusive
        ("S1", datetime(2026, 12, 14, 10, 0), ["D1"]),  # next Monday too
        ("S1", datetime(2026, 12, 8, 9, 0), ["D3"]),  # the dated shift
        ("S1", datetime(2026, 12, 15, 9, 0), []),  # not the Tuesday after
        ("S2", datetime(2026, 12, 9, 10, 0), ["D4"]),
        ("S2", datetime(2026, 12, 7, 10, 0), []),
        ("S9", datetime(2026, 12, 7, 10, 0), []),
    ],
)
def test_on_duty(station: str, at: datetime, expected: list[str]) -> None:
    assert on_duty(ROSTER, station, at) == expected

