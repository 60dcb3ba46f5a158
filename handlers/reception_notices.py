"""What a reception's followers and deputies are told by 订阅通知 and through the outbox: the
typed fields of the reception-notice 订阅通知 (settings.subscribe_id_reception), and the one path
that tells everyone already told of a reception (reminded deputies and followers, followers a
broadcast of it went to) that it changed or was cancelled.

The 订阅通知 template the account adds for receptions has these fields (bot/core/wechat_fields.py
types and limits): thing1 接待主题, time2 接待时间, thing3 接待地点, thing4 说明 (the deputies in an
announcement; 时间地点有调整 / 已取消 in the news of a change)."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from bot.core.outbound import OutboxMessage
from bot.core.ports import UnitOfWork
from bot.core.receptions import Reception
from bot.core.wechat_fields import fit_all
from bot.texts import Texts

RECEPTION_KEY = "reception"  # settings.subscribe_id_reception (and template_id_reception, should one exist)


def announced_kind(broadcast_id: int) -> str:
    """The reminders-table kind that records whom a broadcast of the reception went to."""
    return f"announce_{broadcast_id}"


def reception_fields(reception: Reception, note: str) -> dict[str, str]:
    return fit_all({"thing1": reception.topic,
                    "time2": f"{reception.day.year}年{reception.day.month}月{reception.day.day}日 {reception.start:%H:%M}",
                    "thing3": reception.place, "thing4": note})


def deputies_note(reception: Reception, deputy_names: Mapping[str, str], texts: Texts) -> str:
    return texts.get("reception_field_deputies",
                     deputies="、".join(deputy_names.get(c, c) for c in reception.deputy_codes))


async def tell_told(uow: UnitOfWork, reception: Reception, text: str, note: str, now: datetime) -> int:
    """One outbox message to each person already told of this reception (in `uow`'s transaction);
    out of their 48 h window it goes as the reception 订阅通知 when they have one left, else it
    waits until they next write. How many."""
    assert reception.id is not None
    data = reception_fields(reception, note)
    told = await uow.reminders.told(reception.id)
    for openid in told:
        await uow.outbox.add(OutboxMessage(recipient_openid=openid, text=text, template_key=RECEPTION_KEY,
                                           template_data=data, created_at=now))
    return len(told)


def changed(before: Reception, after: Reception) -> bool:
    """A change the people told must hear of: the date, the time, the place or the deputies."""
    return (before.day, before.start, before.end, before.place, set(before.deputy_codes)) != \
        (after.day, after.start, after.end, after.place, set(after.deputy_codes))
