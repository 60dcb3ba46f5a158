"""Deputies in chat: `绑定 <code>` binds an account; a bound deputy's commands (受理/办结/转 …)."""
from __future__ import annotations

from handlers import deputies
from handlers.chat.router import Context, Router


async def _bind(ctx: Context) -> str | None:
    code = deputies.parse_bind_command(ctx.text)
    # "绑定 123456" (or a bare/short code: bind_deputy explains the format); a citizen's
    # "绑定手机号" is not a bind command
    if code is not None and (code == "" or "".join(code.split()).isdigit()):
        return await deputies.bind_deputy(ctx.services, ctx.openid, code)
    return None


async def _command(ctx: Context) -> str | None:
    deputy = await deputies.bound_deputy(ctx.services, ctx.openid)
    if deputy is not None:
        return await deputies.handle_deputy_message(ctx.services, deputy, ctx.text)
    # 受理/办结/转 from someone not bound as a deputy: say so, change nothing
    return deputies.unbound_reply(ctx.services, ctx.text)


binding = Router("deputy-binding", _bind, kinds=frozenset({"text"}))
commands = Router("deputy-commands", _command, kinds=frozenset({"text"}), reads=deputies.bound_deputy_keys)
