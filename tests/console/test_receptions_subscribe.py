"""A reception's announcement by 订阅通知 through the API, against the fake WeChat API (which checks
the typed fields, the template id and each user's subscriptions): followers who accepted the
reception notice get it that way, not by mass send (no monthly budget used), the grant is used
up; failures are listed in Chinese and retried; a change of the reception is told to each."""
from __future__ import annotations

import asyncio

from test_receptions_api import FOLLOWERS, api, call, reception  # noqa: F401 - `api` is the fixture

from bot.wechat.fake_api import SUBSCRIBE_PATH
from handlers import channels

TEMPLATE = "tpl-reception-notice"
SUBSCRIBERS = FOLLOWERS[:5]  # of SZ-01's 20 followers


async def _subscribe(api, openids=SUBSCRIBERS) -> None:
    services = api.rig.services
    services.settings.subscribe_id_reception = TEMPLATE
    api.wechat.subscribe_templates = {TEMPLATE}
    for openid in openids:  # they accepted WeChat's pop-up: both sides know
        await channels.grant_subscription(services, openid, TEMPLATE)
        api.wechat.grant_subscription(openid, TEMPLATE)


async def test_subscribers_get_the_announcement_as_a_subscribe_notice_not_a_mass_message(api) -> None:
    await _subscribe(api)
    _, created = await call(api, "qu", "POST", "/receptions", json=reception())
    status, body = await call(api, "shengze", "POST", "/broadcasts",
                              json={"station": "SZ-01", "reception_id": created["id"], "dry_run": True})
    assert status == 200
    assert (body["plan"]["subscribe"], body["plan"]["mass_openids"], body["plan"]["unreachable"]) == (5, 15, 0)
    status, body = await call(api, "shengze", "POST", "/broadcasts",
                              json={"station": "SZ-01", "reception_id": created["id"]})
    assert status == 201
    await asyncio.gather(*api.senders)

    notices = api.wechat.messages()
    assert sorted(c["openid"] for c in notices if c["path"] == SUBSCRIBE_PATH) == SUBSCRIBERS
    data = notices[0]["data"]
    assert data["thing1"] == "主题接待：养老服务" and data["thing3"] == "东方社区服务中心"
    assert data["time2"] == f"{created['date'][:4]}年12月5日 09:00" and "沈建国" in data["thing4"]
    [mass] = api.wechat.mass_calls()
    assert sorted(mass["json"]["touser"]) == FOLLOWERS[5:20]  # nobody twice
    assert all(o not in api.wechat.mass_received for o in SUBSCRIBERS)  # no mass budget used
    _, shown = await call(api, "shengze", "GET", f"/broadcasts/{body['id']}")
    assert shown["state"] == "done"
    assert shown["progress"]["subscribe"] == {"sent": 5, "pending": 0, "failed": 0}
    assert [(await channels.subscriptions(api.rig.services, o))[TEMPLATE] for o in SUBSCRIBERS] == [0] * 5  # used up

    _, again = await call(api, "shengze", "POST", "/broadcasts",
                          json={"station": "SZ-01", "reception_id": created["id"], "dry_run": True})
    assert (again["plan"]["subscribe"], again["plan"]["mass_openids"]) == (0, 20)  # one-time: by mass now


async def test_a_refused_subscribe_notice_is_listed_in_chinese_and_retried(api) -> None:
    await _subscribe(api)
    _, created = await call(api, "qu", "POST", "/receptions", json=reception())
    api.wechat.fail_next(SUBSCRIBE_PATH, 45009, "reach max api daily quota limit")
    _, body = await call(api, "qu", "POST", "/broadcasts", json={"station": "SZ-01", "reception_id": created["id"]})
    await asyncio.gather(*api.senders)
    _, shown = await call(api, "qu", "GET", f"/broadcasts/{body['id']}")
    [failure] = shown["failures"]
    assert shown["state"] == "failed" and failure["channel"] == "subscribe" and failure["people"] == 1
    assert failure["error"].startswith("45009") and failure["reason"].startswith("微信返回 45009")
    _, retried = await call(api, "qu", "POST", f"/broadcasts/{body['id']}/retry")
    assert retried["retried"] == 1
    await asyncio.gather(*api.senders)
    _, shown = await call(api, "qu", "GET", f"/broadcasts/{body['id']}")
    assert shown["state"] == "done" and shown["progress"]["subscribe"]["sent"] == 5
    delivered = [c["openid"] for c in api.wechat.messages() if c["path"] == SUBSCRIBE_PATH]
    assert sorted(delivered) == SUBSCRIBERS  # each once, the refused one on the retry

    # WeChat says no subscription is left though we thought one was: failed, and we believe WeChat
    lone = FOLLOWERS[6]
    await channels.grant_subscription(api.rig.services, lone, TEMPLATE)
    _, body = await call(api, "qu", "POST", "/broadcasts", json={"station": "SZ-01", "reception_id": created["id"]})
    await asyncio.gather(*api.senders)
    _, shown = await call(api, "qu", "GET", f"/broadcasts/{body['id']}")
    assert [f["reason"] for f in shown["failures"]] == ["对方已没有剩余的订阅次数（没有再次同意接收），没有发出"]
    assert (await channels.subscriptions(api.rig.services, lone))[TEMPLATE] == 0


async def test_a_text_notice_never_goes_by_subscribe_notice(api) -> None:
    await _subscribe(api)
    _, body = await call(api, "qu", "POST", "/broadcasts", json={"station": "SZ-01", "text": "周六有接待",
                                                               "dry_run": True})
    assert (body["plan"]["subscribe"], body["plan"]["mass_openids"]) == (0, 20)
