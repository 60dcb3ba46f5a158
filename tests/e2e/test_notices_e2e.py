"""Notices tell the truth, through the real entry point (issue 8 §2): the replies say whether a push
went, waits for its recipient to open the account, or cannot be delivered; a held notice that a
transfer made stale is dropped, not delivered."""
from __future__ import annotations

from bot.core import keys
from e2e_stack import Stack
from test_loop import TEXTS, bind, filed_number, ticket, walk_form

CITIZEN = "oCitizen-e2e-notices"


def reach(outcome: str, who_key: str, **params: str) -> str:
    return TEXTS.get(f"reach_{outcome}", who=TEXTS.get(who_key, **params))


async def shut_window(stack: Stack, openid: str) -> None:
    """As if the user last wrote more than 48 h ago."""
    await stack.bot.services.kv.delete(keys.message_window(openid))
    await stack.bot.services.kv.delete(keys.burst_window(openid))


async def test_replies_say_what_really_happened_and_stale_notices_are_dropped(stack: Stack) -> None:
    d1, d2 = await bind(stack, "D001"), await bind(stack, "D002")
    for openid in (d1, d2):
        await shut_window(stack, openid)  # no window, and no template configured here
    await stack.event(CITIZEN, "subscribe", "qrscene_station:SL-01")
    await walk_form(stack, CITIZEN, "我们村口的路灯坏了一个星期了")
    filing_reply = await stack.send(CITIZEN, "是")
    number = filed_number(filing_reply)
    filed = await ticket(stack, number)
    name = TEXTS_NAME[filed.deputy_code]
    assert "已转给值班代表" in filing_reply
    assert reach("later", "reach_who_named", name=name) in filing_reply  # not "sent": it is not
    holder, other = (d1, d2) if filed.deputy_code == "D001" else (d2, d1)
    other_code = "D002" if filed.deputy_code == "D001" else "D001"
    await stack.delivered()
    # the citizen was told the truth: the notice waits until the deputy opens the account
    async with stack.bot.services.uow() as uow:
        (notice,) = [m for m in await uow.outbox.list(("held",)) if m.recipient_openid == holder]
    assert notice.ticket_number == number and stack.pushes(holder) == []

    # the deputy hands it on without having seen the notice: the reply tells both outcomes
    reply = await stack.send(holder, f"转 #{number} {other_code}")
    assert reply == TEXTS.get("deputy_transfer_ok", number=number, deputy=TEXTS_NAME[other_code],
                              reach=reach("later", "reach_who_other") + reach("sent", "reach_who_citizen")), reply
    await stack.delivered()
    # the held 「新工单 … 回复受理接手」 was released by that message and dropped as stale
    assert not any(f"#{number}" in text for text in stack.pushes(holder))
    async with stack.bot.services.uow() as uow:
        dropped = [m for m in await uow.outbox.list(("dropped",)) if m.recipient_openid == holder]
    assert [(m.id, m.last_error) for m in dropped] == [(notice.id, "stale: transferred")]
    assert any(f"#{number}" in text and TEXTS_NAME[other_code] in text for text in stack.pushes(CITIZEN))

    # the new deputy opens the account: their transfer notice (still true) arrives
    await stack.send(other, "你好")
    await stack.delivered()
    assert any(f"【转来的工单 #{number}】" in text for text in stack.pushes(other))

    # the citizen's note: the deputy's window is open now, so it is really passed on
    reply = await stack.send(CITIZEN, f"#{number} 是村口第三根")
    assert reply == TEXTS.get("citizen_note_sent", number=number, reach=reach("sent", "reach_who_note"))
    await stack.delivered()
    assert any("是村口第三根" in text for text in stack.pushes(other))


TEXTS_NAME = {"D001": "测试代表甲", "D002": "测试代表乙"}


async def test_a_subscription_accepted_in_wechats_popup_is_recorded(stack: Stack) -> None:
    from bot.wechat.platform import subscribe_popup_xml
    from e2e_stack import ACCOUNT
    from handlers import channels

    stack.created += 1
    xml = subscribe_popup_xml(CITIZEN, ACCOUNT, {"SUB-STATUS": "accept", "SUB-OTHER": "reject"},
                              created_at=stack.created)
    response = await stack.post_xml(xml)
    assert response.status == 200 and (await response.text()) in ("success", "")
    assert await channels.subscriptions(stack.bot.services, CITIZEN) == {"SUB-STATUS": 1, "SUB-OTHER": 0}
