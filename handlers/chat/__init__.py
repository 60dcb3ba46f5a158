"""The chat: one inbound WeChat message in, the passive reply text out.

Every message goes through ROUTERS, in this order; the first that answers wins (a router says
"not mine" by returning None). See docs/architecture.md "Chat routers" for adding a mode."""
from __future__ import annotations

from handlers.chat import answers, commands, deputy, follow, follows, intents, live, report, subscriptions
from handlers.chat.router import Router, Scene

ROUTERS: tuple[Router | Scene, ...] = (
    live.join,  # a live session's QR code (live:<id>): before the follow router, which takes the others
    follow.router,  # subscribe (bind the QR station, welcome) · SCAN · unsubscribe
    subscriptions.router,  # 订阅通知 accepted/refused (events, no reply)
    deputy.binding,  # 绑定 <code>
    deputy.commands,  # a bound deputy's 受理/办结/转 …
    live.scene,  # 云直播: texts are questions for the host while the session runs (before the report's photo start)
    report.scene,  # the report form
    follows.router,  # 订阅 / 关注接待 [place] · 退订 · 我的订阅: stations' receptions
    commands.router,  # rating · 我的诉求 · #1024 · #1024 <text> · 帮助 · the menu's buttons
    intents.router,  # intent → handler
    answers.unsupported,  # video, link, …
)

