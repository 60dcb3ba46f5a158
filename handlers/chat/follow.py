"""Following, scanning a station's QR code, unfollowing."""
from __future__ import annotations

from handlers import citizens, follows
from handlers.chat.router import Context, Router


async def _handle(ctx: Context) -> str | None:
    if ctx.kind == "unsubscribe":
        await citizens.mark_unsubscribed(ctx.services, ctx.openid)
        await ctx.leave()
        return None
    station = await citizens.bind_station_by_scene(ctx.services, ctx.openid, ctx.inbound.scene)
    following = ""
    if station and ctx.inbound.scene.startswith("station:") and \
            await follows.follow_stations(ctx.services, ctx.openid, [station.code]):
        following = "\n" + ctx.texts.get("follow_scan_added")  # a station's QR follows its receptions
    if ctx.kind == "subscribe":
        welcome = ctx.texts.get("citizen_welcome")
        if station:
            welcome += "\n" + ctx.texts.get("citizen_welcome_station", station=station.name) + following
        return welcome
    if station:
        return ctx.texts.get("citizen_scan_bound", station=station.name) + following
    return ctx.texts.get("citizen_scan_unknown")


router = Router("follow", _handle, kinds=frozenset({"subscribe", "scan", "unsubscribe"}))
