"""Routing policy: which station gets a report, and which deputy there. Pure functions, no I/O.

Station order (issue 2, section 2):
1. the station bound by the scanned QR code, when it exists;
2. a station whose `places` matches the place the citizen named;
3. the station specialised in the report's category in that town;
4. that town's 代表之家;
5. the district queue.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

from bot.core.people import DISTRICT_QUEUE, Station, StationKind

# Administrative suffixes people add or leave out ("梅堰村" / "梅堰", "黎里镇" / "黎里").
# Longest first so "社区居委会" is stripped whole rather than leaving "社区".
_SUFFIXES = tuple(
    sorted(
        ("社区居委会", "村民委员会", "居民委员会", "村委会", "居委会", "社区", "街道", "村", "镇", "乡", "小区"),
        key=len,
        reverse=True,
    )
)
# A one-character name ("东") would match far too much; ignore shorter keys.
_MIN_KEY = 2

# 站/点 serve a few villages and are closer to the citizen than the town-wide 家.
_KIND_RANK = {StationKind.STATION: 0, StationKind.POINT: 1, StationKind.HOME: 2}


@lru_cache(maxsize=4096)  # pure; a filing normalises every station's places (thousands of calls)
def normalize_place(name: str) -> str:
    """'梅堰村' -> '梅堰', ' 黎里镇 ' -> '黎里'; keeps two-character names whole ('东村' stays:
    '东' alone would match far too much)."""
    text = "".join(name.split())
    for suffix in _SUFFIXES:
        if text.endswith(suffix) and len(text) - len(suffix) >= _MIN_KEY:
            return text[: -len(suffix)]
    return text


def _same_town(a: str, b: str) -> bool:
    return bool(a) and bool(b) and normalize_place(a) == normalize_place(b)


def _place_match_length(station: Station, place_text: str, place_key: str, towns: set[str]) -> int:
    """Length of the longest of the station's places that matches the named place; 0 for none.

    Matching is substring either way: the citizen may name more ("平望镇梅堰村村口") or less
    ("梅堰") than the station lists. A served place spelled like a town ("黎里社区" ~ 黎里镇)
    is skipped: naming the town is not naming that community, and the town-level steps
    (specialised station, 代表之家) decide those reports."""
    best = 0
    for served in station.places:
        key = normalize_place(served)
        if len(key) < _MIN_KEY or key in towns:
            continue
        if key in place_text or (len(place_key) >= _MIN_KEY and place_key in key):
            best = max(best, len(key))
    return best


def match_place(stations: Sequence[Station], place: str, town: str = "") -> Station | None:
    """The station serving the named place: same town first (when known), then 站/点 over 家,
    then the most specific (longest) match, then the code for a stable answer."""
    place_text = "".join(place.split())
    place_key = normalize_place(place_text)
    if not place_text:
        return None
    towns = {normalize_place(s.town) for s in stations if s.town}
    candidates = []
    for station in stations:
        length = _place_match_length(station, place_text, place_key, towns)
        if length:
            other_town = bool(town) and not _same_town(station.town, town)
            candidates.append(((other_town, _KIND_RANK.get(station.kind, 9), -length, station.code), station))
    if not candidates:
        return None
    return min(candidates, key=lambda c: c[0])[1]


def town_of(stations: Sequence[Station], place: str) -> str:
    """The town named inside a place text ("盛泽镇某某路" -> the stations' spelling of 盛泽)."""
    text = "".join(place.split())
    best = ""
    for station in stations:
        key = normalize_place(station.town)
        if len(key) >= _MIN_KEY and key in text and len(key) > len(normalize_place(best)):
            best = station.town
    return best


def choose_station(
    stations: Sequence[Station],
    *,
    qr_station_code: str | None,
    place: str,
    town: str,
    category: str,
) -> str:
    """The code of the station that handles the report, or DISTRICT_QUEUE."""
    by_code = {s.code: s for s in stations}
    if qr_station_code and qr_station_code in by_code:
        return qr_station_code

    matched = match_place(stations, place, town)
    if matched is not None:
        return matched.code

    town = town or town_of(stations, place)
    if not town:
        return DISTRICT_QUEUE
    in_town = [s for s in stations if _same_town(s.town, town)]

    specialised = [s for s in in_town if category and category in s.specialties]
    if specialised:
        return min(specialised, key=lambda s: (_KIND_RANK.get(s.kind, 9), s.code)).code

    homes = [s for s in in_town if s.kind is StationKind.HOME]
    if homes:
        return min(homes, key=lambda s: s.code).code
    return DISTRICT_QUEUE


def choose_deputy(
    on_duty: Sequence[str],
    open_counts: Mapping[str, int],
    last_assigned: str | None,
) -> str | None:
    """Among deputies on duty: the fewest open tickets; ties go round robin, i.e. to the first
    tied code (sorted) after `last_assigned`, wrapping around. None when nobody is on duty."""
    codes = sorted(set(on_duty))
    if not codes:
        return None
    fewest = min(open_counts.get(c, 0) for c in codes)
    tied = [c for c in codes if open_counts.get(c, 0) == fewest]
    if last_assigned is not None:
        for code in tied:
            if code > last_assigned:
                return code
    return tied[0]
