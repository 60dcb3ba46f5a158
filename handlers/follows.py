"""Following a station's receptions: 订阅 / 关注接待 [station or town], 退订, 我的订阅, and the
station QR code. Stored in the database; WeChat user tags (one per town) mirror it later
(handlers/broadcasts.py sync_tags), so a follow never waits for the WeChat API."""
from __future__ import annotations

from collections.abc import Sequence

from bot.core.people import Station
from bot.core.receptions import Follow
from handlers import citizens
from handlers.receptions import stations_named
from handlers.services import Services


async def follow_stations(services: Services, openid: str, station_codes: Sequence[str]) -> list[str]:
    """Follow these stations; the codes that were not followed yet."""
    now = services.clock.now()
    async with services.uow() as uow:
        added = [code for code in station_codes if await uow.follows.follow(Follow(openid, code, now))]
        await uow.commit()
    return added


async def _stations(services: Services) -> list[Station]:
    async with services.uow() as uow:
        return list(await uow.stations.list())


def _names(stations: Sequence[Station], codes: Sequence[str]) -> str:
    by_code = {s.code: s.name for s in stations}
    return "、".join(by_code.get(code, code) for code in codes)


async def follow_text(services: Services, openid: str, name: str) -> str:
    """订阅 [name]: the named station(s) or town, else the citizen's QR station."""
    texts = services.texts
    stations = await _stations(services)
    if name:
        chosen = stations_named(name, stations)
        if not chosen:
            return texts.get("follow_unknown_place", name=name)
    else:
        bound = await citizens.bound_station(services, openid)
        if bound is None:
            return texts.get("follow_which")
        chosen = [bound]
    codes = [s.code for s in chosen]
    added = await follow_stations(services, openid, codes)
    if not added:
        return texts.get("follow_already", stations=_names(stations, codes))
    return texts.get("follow_done", stations=_names(stations, added))


async def unfollow_text(services: Services, openid: str, name: str) -> str:
    texts = services.texts
    stations = await _stations(services)
    codes = None
    if name:
        chosen = stations_named(name, stations)
        if not chosen:
            return texts.get("follow_unknown_place", name=name)
        codes = [s.code for s in chosen]
    async with services.uow() as uow:
        stopped = await uow.follows.unfollow(openid, codes)
        await uow.commit()
    if not stopped:
        return texts.get("follow_none")
    return texts.get("follow_stopped", stations=_names(stations, stopped))


async def my_follows_text(services: Services, openid: str) -> str:
    async with services.uow() as uow:
        follows = await uow.follows.of_citizen(openid)
    if not follows:
        return services.texts.get("follow_none")
    names = {s.code: s.name for s in await _stations(services)}
    return services.texts.get("follow_list", stations="\n".join(
        f"· {names.get(f.station_code, f.station_code)}" for f in follows))
