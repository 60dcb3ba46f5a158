"""订阅 / 关注接待 [station or town] · 退订 [station or town] · 我的订阅: following stations' receptions."""
from __future__ import annotations

from handlers import follows
from handlers.chat.router import TEXTS, Context, Router


MAX_NAME = 20  # 订阅 盛泽镇代表之家; anything longer is a sentence, not this command


def _command(text: str, words: list[str]) -> str | None:
    """The name after one of `words` ("" for none: 订阅), or None when the text is not that command."""
    for word in sorted(words, key=len, reverse=True):
        if text.startswith(word):
            name = text[len(word):].strip(" 　:：")
            return name if len(name) <= MAX_NAME else None
    return None


async def _handle(ctx: Context) -> str | None:
    text = ctx.text
    if _command(text, ctx.texts.raw("my_follows_words")) == "":
        return await follows.my_follows_text(ctx.services, ctx.openid)
    name = _command(text, ctx.texts.raw("unfollow_words"))
    if name is not None:
        return await follows.unfollow_text(ctx.services, ctx.openid, name)
    name = _command(text, ctx.texts.raw("follow_words"))
    if name is not None:
        return await follows.follow_text(ctx.services, ctx.openid, name)
    return None


router = Router("follows", _handle, kinds=TEXTS)
