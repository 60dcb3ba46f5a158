"""The reception and follow repositories: one contract, run against memory, SQLite and PostgreSQL."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time

from bot.core.receptions import Follow, FollowUp, Reception

T0 = datetime(2026, 12, 1, 9, 30)


def reception(station_code: str = "S01", day: date = date(2026, 12, 5), start: time = time(9), **kw) -> Reception:
    base = dict(station_code=station_code, deputy_codes=("D001", "D002"), day=day, start=start, end=time(11),
                topic="主题接待：养老服务", place="松陵街道代表之家", capacity=30)
    base.update(kw)
    return Reception(**base)


async def test_receptions_add_get_save_and_list_by_days_and_stations(uow_factory) -> None:
    async with uow_factory() as uow:
        first = await uow.receptions.add(reception())
        second = await uow.receptions.add(reception("S02", date(2026, 12, 3), time(14), end=time(16)))
        later = await uow.receptions.add(reception(day=date(2026, 12, 20)))
        await uow.commit()
    assert first.id is not None and len({first.id, second.id, later.id}) == 3
    async with uow_factory() as uow:
        assert await uow.receptions.get(first.id) == first
        assert await uow.receptions.by_key("S01", date(2026, 12, 5), time(9)) == first
        assert await uow.receptions.by_key("S01", date(2026, 12, 5), time(10)) is None
        assert [r.id for r in await uow.receptions.between(date(2026, 12, 1))] == [second.id, first.id, later.id]
        assert [r.id for r in await uow.receptions.between(date(2026, 12, 1), date(2026, 12, 10))] == [second.id, first.id]
        assert [r.id for r in await uow.receptions.between(date(2026, 12, 1), station_codes=["S02"])] == [second.id]
        done = first.cancelled().recorded(FollowUp(("D001",), 12, "三件诉求", tickets=(1001, 1002)))
        await uow.receptions.save(done)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.receptions.get(first.id) == done


async def test_receptions_not_committed_are_gone(uow_factory) -> None:
    async with uow_factory() as uow:
        added = await uow.receptions.add(reception())
    async with uow_factory() as uow:
        assert await uow.receptions.get(added.id) is None


async def test_follows_follow_unfollow_list_and_tag_state(uow_factory) -> None:
    async with uow_factory() as uow:
        assert await uow.follows.follow(Follow("o1", "S01", T0))
        assert not await uow.follows.follow(Follow("o1", "S01", T0))  # already following
        assert await uow.follows.follow(Follow("o1", "S02", T0))
        assert await uow.follows.follow(Follow("o2", "S01", T0))
        await uow.commit()
    async with uow_factory() as uow:
        assert [f.station_code for f in await uow.follows.of_citizen("o1")] == ["S01", "S02"]
        assert [f.openid for f in await uow.follows.followers(["S01"])] == ["o1", "o2"]
        assert len(await uow.follows.untagged()) == 3
        await uow.follows.mark_tagged("o1", "S01")
        assert await uow.follows.unfollow("o1", ["S02"]) == ["S02"]
        await uow.commit()
    async with uow_factory() as uow:
        assert [f.station_code for f in await uow.follows.of_citizen("o1")] == ["S01"]
        untagged = {(f.openid, f.station_code, f.active) for f in await uow.follows.untagged()}
        assert untagged == {("o1", "S02", False), ("o2", "S01", True)}  # the stop must reach the tag too
        assert await uow.follows.unfollow("o1") == ["S01"]
        assert await uow.follows.unfollow("o1") == []
        assert await uow.follows.follow(Follow("o1", "S02", T0))  # follow again
        await uow.commit()
    async with uow_factory() as uow:
        assert [f.station_code for f in await uow.follows.of_citizen("o1")] == ["S02"]


async def test_broadcast_sends_are_claimed_once_and_retaken_after_the_lease(uow_factory) -> None:
    from datetime import timedelta

    from bot.core.broadcasts import LEASE_EXPIRED, Broadcast, BroadcastSend, Channel, SendStatus

    plan = [BroadcastSend(0, seq, Channel.MASS_OPENIDS, (f"o{seq}a", f"o{seq}b")) for seq in (1, 2)]
    async with uow_factory() as uow:
        b = await uow.broadcasts.add(Broadcast("town", "盛泽镇", "通知", T0, {"mass_openids": 4}), plan)
        await uow.commit()
    lease = T0 + timedelta(minutes=5)
    async with uow_factory() as uow:
        assert (await uow.broadcasts.get(b.id)).plan == {"mass_openids": 4}
        first = await uow.broadcasts.claim(b.id, T0, lease)
        second = await uow.broadcasts.claim(b.id, T0, lease)
        assert (first.seq, second.seq, first.attempts) == (1, 2, 1)
        assert await uow.broadcasts.claim(b.id, T0, lease) is None  # both taken
        await uow.broadcasts.save_send(replace(first, status=SendStatus.SENT, msg_id="m1", sent_at=T0))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.broadcasts.claim(b.id, T0 + timedelta(minutes=4), lease) is None
        again = await uow.broadcasts.claim(b.id, lease, lease + timedelta(minutes=5))  # its sender died
        assert (again.seq, again.attempts, again.clientmsgid) == (2, 2, f"ztc-b{b.id}-s2")
        assert again.last_error == LEASE_EXPIRED and first.last_error == ""  # the claim says it ran out
        await uow.commit()
    async with uow_factory() as uow:
        assert [(s.seq, s.status, s.msg_id) for s in await uow.broadcasts.sends(b.id)] == [
            (1, SendStatus.SENT, "m1"), (2, SendStatus.CLAIMED, "")]


async def test_broadcasts_newest_first_by_station_or_town_with_who_sent_them(uow_factory) -> None:
    from datetime import timedelta

    from bot.core.broadcasts import Broadcast

    async with uow_factory() as uow:
        made = [await uow.broadcasts.add(Broadcast(kind, audience, "通知", T0 + timedelta(minutes=i), created_by=who), [])
                for i, (kind, audience, who) in enumerate((("station", "S01", "a"), ("town", "盛泽镇", "b"),
                                                           ("station", "S02", "c"), ("town", "七都镇", "")))]
        await uow.commit()
    async with uow_factory() as uow:
        everything = await uow.broadcasts.recent()
        assert [b.id for b in everything] == [b.id for b in reversed(made)]
        assert [b.created_by for b in everything] == ["", "c", "b", "a"]
        scoped = await uow.broadcasts.recent(["S01"], ["盛泽镇"])
        assert [b.audience for b in scoped] == ["盛泽镇", "S01"]
        assert [b.audience for b in await uow.broadcasts.recent(["S02"], [])] == ["S02"]
        assert [b.audience for b in await uow.broadcasts.recent(limit=2, offset=1)] == ["S02", "盛泽镇"]


async def test_the_monthly_mass_budget_counts_per_user_and_month(uow_factory) -> None:
    async with uow_factory() as uow:
        await uow.broadcasts.count_mass(["o1", "o2"], "2026-12")
        await uow.broadcasts.count_mass(["o1"], "2026-12")
        await uow.broadcasts.count_mass(["o1"], "2027-01")
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.broadcasts.mass_used(["o1", "o2", "o3"], "2026-12") == {"o1": 2, "o2": 1}


async def test_a_reminder_is_claimed_once_and_remembers_who_was_told(uow_factory) -> None:
    async with uow_factory() as uow:
        assert await uow.reminders.claim(7, "deputy_eve", ["oD1", "oD2"], T0)
        await uow.commit()
    async with uow_factory() as uow:
        assert not await uow.reminders.claim(7, "deputy_eve", ["oD1"], T0)  # a second run finds it done
        assert await uow.reminders.claim(7, "followers_morning", ["oF1", "oD1"], T0.replace(hour=10))
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.reminders.told(7) == ["oD1", "oD2", "oF1"]
        assert await uow.reminders.told(8) == []


async def test_town_tags_and_untagged_by_station(uow_factory) -> None:
    async with uow_factory() as uow:
        await uow.follows.follow(Follow("o1", "S01", T0))
        await uow.follows.follow(Follow("o1", "S02", T0))
        await uow.follows.set_town_tag("盛泽镇", 101)
        await uow.follows.set_town_tag("盛泽镇", 102)
        await uow.commit()
    async with uow_factory() as uow:
        assert await uow.follows.town_tag("盛泽镇") == 102 and await uow.follows.town_tag("黎里镇") is None
        assert [f.station_code for f in await uow.follows.untagged(station_codes=["S02"])] == ["S02"]
