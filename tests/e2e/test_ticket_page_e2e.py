"""Issue 8 §3: the deputy's push links to a read-only page of the ticket — signed, expiring, for
that deputy only; forged → 403, expired → 410, a deputy of another station → 403."""
from __future__ import annotations

import re
from datetime import timedelta

from e2e_stack import Stack
from test_loop import bind, fill_report, ticket

CITIZEN = "oCitizen-e2e-page"
LONG = "路灯坏了以后，晚上整条路一片漆黑。" * 60  # ~1000 字: more than a push shows


async def test_the_notice_links_to_the_whole_ticket_for_that_deputy_only(stack: Stack) -> None:
    d1, d2 = await bind(stack, "D001"), await bind(stack, "D002")
    await stack.event(CITIZEN, "subscribe", "qrscene_station:SL-01")
    number = await fill_report(stack, CITIZEN, f"我们村口的路灯坏了。{LONG}")
    filed = await ticket(stack, number)
    holder = d1 if filed.deputy_code == "D001" else d2
    await stack.delivered()
    notice = next(text for text in stack.pushes(holder) if f"#{number}" in text)
    assert len(notice.encode("utf-8")) <= 2048
    url = re.search(r"https?://\S+/t/\d+\?\S+", notice).group(0)
    path = url[url.index("/t/"):]

    response = await stack.client.get(path)
    assert response.status == 200 and response.headers["Cache-Control"] == "no-store"
    html = await response.text()
    assert LONG in html and "13912345678" in html  # the whole text; the phone: agreed, theirs
    assert "提交了诉求" in html

    # another deputy's code on the same signature: forged
    other = "D002" if filed.deputy_code == "D001" else "D001"
    forged = re.sub(r"d=D00\d", f"d={other}", path)
    response = await stack.client.get(forged)
    assert response.status == 403 and "链接打不开" in await response.text()
    response = await stack.client.get(path[:-3] + "abc")
    assert response.status == 403

    # a week later the link has expired (checked before anything is read): a clear page, and how to get a new one
    stack.clock.current += timedelta(days=8)
    response = await stack.client.get(path)
    assert response.status == 410
    assert f"详情 #{number}" in await response.text()
    stack.clock.current -= timedelta(days=8)

    # handed to another station's deputy: the old link no longer shows it
    await stack.send(holder, f"转 #{number} D003")
    response = await stack.client.get(path)
    assert response.status == 403 and "不归您处理" in await response.text()
