"""订阅通知 choices: WeChat tells us what a user accepted or refused in its pop-up
(subscribe_msg_popup_event) or later in the chat's settings (subscribe_msg_change_event). Recorded
for delivery (handlers/channels.py); no reply (WeChat shows none for these events)."""
from __future__ import annotations

import logging

from bot.core.privacy import mask_openid
from handlers import channels
from handlers.chat.router import Context, Router

log = logging.getLogger(__name__)

EVENTS = frozenset({"subscribe_msg_popup_event", "subscribe_msg_change_event"})


async def _record(ctx: Context) -> str | None:
    long_term = ctx.services.settings.subscribe_long_term
    for template_id, status in ctx.inbound.subscriptions:
        if status == "accept":
            await channels.grant_subscription(ctx.services, ctx.openid, template_id, long_term=long_term)
        else:
            await channels.set_subscription(ctx.services, ctx.openid, template_id, 0)
    log.info("subscriptions of %s: %s", mask_openid(ctx.openid), ctx.inbound.subscriptions)
    return None


router = Router("subscriptions", _record, kinds=EVENTS)
