"""The rig itself: a report through the real `zhitongche serve`, its push delivered through the
fake WeChat API, and a kill -9 and restart on the same database and Redis."""
from __future__ import annotations

from harness import Rig, asks, ticket_number

CITIZEN = "oCitizen_fault_rig_000001"


async def test_report_push_kill_and_restart(rig: Rig) -> None:
    deputy = await rig.bind_deputy()
    await rig.walk_form(CITIZEN)
    number = ticket_number(await rig.send(CITIZEN, "是"))
    assert number is not None
    await rig.delivered()
    assert any(f"#{number}" in text for text in rig.api.sent_texts(deputy))

    rig.kill()
    assert rig.proc is not None and rig.proc.returncode == -9
    await rig.start()
    reply = await rig.send(CITIZEN, "我的诉求")
    assert reply and f"#{number}" in reply
    assert not asks(reply, "form_ask_confirm")
