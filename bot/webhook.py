"""The WeChat webhook at /wechat: GET URL verification, POST messages (plaintext and safe mode).

Order on POST: bounded body read (413) → signed timestamp within the window (403) → signature
(403, nothing stored) → decrypt → safe parse, bounded fields (400) → de-duplicate on
Inbound.dedupe_key → handler as a task, waited for up to settings.reply_deadline → passive reply,
or, past the deadline, the message kept durably (LateMessages.keep) and then `success`: its reply
is pushed when the handler finishes, and if the handler fails or its process dies the message is
handled again from where it was kept (WeChat will not send it again after `success`).

With an EncodingAESKey set (safe mode) only encrypted requests count: plaintext is refused (403),
since the plain `signature` covers token, timestamp and nonce but not the body; a compatible-mode
body is read through its Encrypt element alone. While the key-value store is down every POST is
answered 503 (WeChat retries), with one warning per outage.

The dedupe key's "pending" marker is a lease (reply_deadline + dedupe_pending_grace) renewed while
the handler runs: a retry after its owner died is handled again. The claim (one round trip) also
marks the message seen for dedupe_ttl: a first claim of an unseen message in a store whose claims
began over dedupe_ttl ago cannot be a retry, and is handled without reading its exactly-once record.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from aiohttp import web
from wechatpy.replies import TextReply

from bot.core import keys
from bot.core.inbound import FIRST_DELIVERY, Inbound
from bot.core.ports import KeyValueStore, LockTimeout, StoreUnavailable
from bot.core.privacy import mask_openid
from bot.settings import Settings
from bot.texts import Texts, default_texts
from bot.wechat.crypto import (
    DecryptError,
    InvalidSignature,
    MessageCrypto,
    StaleRequest,
    check_timestamp,
    verify_signature,
)
from bot.wechat.inbound import MalformedMessage, ParsedMessage, parse

log = logging.getLogger(__name__)

Handle = Callable[[Inbound], Awaitable[str | None]]


class LateMessages(Protocol):
    """Messages answered `success` before their handler finished (handlers/late_inbound.py)."""

    async def keep(self, inbound: Inbound) -> None:
        """Store it durably, before `success` is answered; raises StoreUnavailable if it cannot."""
        ...

    async def answered(self, inbound: Inbound, reply: str | None) -> None:
        """Its handler finished: push the reply (if any) and forget the message, in one transaction."""
        ...


SUCCESS = "success"  # WeChat's "received, no passive reply"
# Values under the dedupe key: what a retry of the same message gets.
_PENDING = keys.DEDUPE_PENDING  # handler running (or went past the deadline: its reply is pushed)
_NO_REPLY = "n"  # handled, nothing to say passively
_REPLY = "r"  # prefix: handled, this is the passive reply text
_CHUNK = 64 * 1024
_SHUTDOWN_GRACE = 10.0


class WeChatWebhook:
    """Routes, auth and parsing of the WeChat channel; `handle` is the application."""

    def __init__(
        self,
        *,
        settings: Settings,
        kv: KeyValueStore,
        handle: Handle,
        late: LateMessages,
        texts: Texts | None = None,
    ) -> None:
        self._settings = settings
        self._kv = kv
        self._handle = handle
        self._late = late
        self._texts = texts or default_texts()
        self._crypto = (
            MessageCrypto(settings.wechat_token, settings.wechat_aes_key, settings.wechat_appid)
            if settings.wechat_aes_key
            else None
        )
        if self._crypto is None:
            log.warning("wechat: safe mode is off (no ZTC_WECHAT_AES_KEY): message bodies are not "
                        "signed, anyone who sees a callback URL can forge messages; use safe mode in production")
        self._tasks: set[asyncio.Task[Any]] = set()  # strong refs: handlers and late pushes
        self._store_down = False  # in an outage of the key-value store (logged once)

    # --- GET: URL verification ----------------------------------------------------------------
    async def verify(self, request: web.Request) -> web.Response:
        q = request.query
        echostr = q.get("echostr", "")
        try:
            check_timestamp(q.get("timestamp", ""), self._settings.wechat_timestamp_window)
            if q.get("msg_signature") and self._crypto is not None:
                # Safe mode with msg_signature (WeCom style): the echostr itself is encrypted.
                echostr = self._crypto.verify_url(q["msg_signature"], q.get("timestamp", ""), q.get("nonce", ""), echostr)
            else:
                verify_signature(self._settings.wechat_token, q.get("signature", ""), q.get("timestamp", ""), q.get("nonce", ""))
        except (InvalidSignature, StaleRequest) as exc:
            log.warning("wechat GET: refused from %s: %s", request.remote, exc)
            return web.Response(status=403, text="forbidden")
        except DecryptError:
            return web.Response(status=400, text="bad echostr")
        return web.Response(text=echostr)

    # --- POST: messages -----------------------------------------------------------------------
    async def receive(self, request: web.Request) -> web.Response:
        body = await _read_bounded(request, self._settings.max_body_bytes)
        if body is None:
            return web.Response(status=413, text="request body too large")

        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        encrypted = q.get("encrypt_type", "raw").lower() == "aes"
        try:
            check_timestamp(timestamp, self._settings.wechat_timestamp_window)
            if self._crypto is not None:
                if not encrypted:
                    raise InvalidSignature("plaintext request in safe mode")
                # msg_signature covers the Encrypt element: the only part of the body we read
                xml_text: str | bytes = self._crypto.decrypt_message(body, q.get("msg_signature", ""), timestamp, nonce)
            elif encrypted:
                return web.Response(status=400, text="safe mode is not configured")
            else:
                verify_signature(self._settings.wechat_token, q.get("signature", ""), timestamp, nonce)
                xml_text = body
            parsed = parse(xml_text)
        except (InvalidSignature, StaleRequest) as exc:
            log.warning("wechat POST: refused from %s: %s", request.remote, exc)
            return web.Response(status=403, text="forbidden")
        except (MalformedMessage, DecryptError) as exc:
            log.warning("wechat POST: refused body: %s", exc)
            return web.Response(status=400, text="bad request")

        try:
            reply = await self._reply_for(parsed.inbound)
        except StoreUnavailable as exc:
            self._note_store_down(exc)
            return web.Response(status=503, text="temporarily unavailable")
        if reply is None:
            return web.Response(text=SUCCESS)
        xml = render_text_reply(parsed, reply)
        if encrypted:
            assert self._crypto is not None
            xml = self._crypto.encrypt_message(xml, nonce or "0")
        return web.Response(text=xml, content_type="application/xml")

    async def _reply_for(self, inbound: Inbound) -> str | None:
        """The passive reply text, or None for `success`. Runs the handler once while its owner
        lives. Raises StoreUnavailable when the key-value store is down."""
        key = keys.DEDUPE_PREFIX + inbound.dedupe_key
        ttl = self._settings.dedupe_ttl
        lease = self._settings.reply_deadline + self._settings.dedupe_pending_grace
        claim = await self._kv.claim(key, _PENDING, lease, seen_key=keys.dedupe_seen(inbound.dedupe_key),
                                     seen_ttl=ttl, epoch_key=keys.DEDUPE_EPOCH)
        if not claim.owned:
            known = await self._kv.get(key)
            log.info("wechat retry of %s from %s: %s", _label(inbound), mask_openid(inbound.openid),
                     "same reply" if known and known.startswith(_REPLY) else "success")
            return known[len(_REPLY):] if known and known.startswith(_REPLY) else None

        # never claimed before in a store older than WeChat's retries (seen_ttl ≫ its ~15 s):
        # no earlier delivery can have been handled, so its exactly-once record need not be read
        first = claim.first_seen and time.time() - claim.epoch >= ttl
        token = FIRST_DELIVERY.set(first)  # the task copies the context
        try:
            task = self._spawn(self._run_owned(inbound, key, lease))
        finally:
            FIRST_DELIVERY.reset(token)
        try:
            done, _ = await asyncio.wait({task}, timeout=self._settings.reply_deadline)
        except asyncio.CancelledError:  # the request went away: the result can only be pushed
            self._spawn(self._keep_late(task, inbound, key))
            raise
        if not done:
            if not await self._keep_late(task, inbound, key):
                raise StoreUnavailable("the late message could not be kept")  # 503: WeChat retries
            log.info("wechat %s from %s: past the %.1fs deadline, reply will be pushed",
                     _label(inbound), mask_openid(inbound.openid), self._settings.reply_deadline)
            return None
        try:
            reply = task.result()
        except StoreUnavailable:
            with contextlib.suppress(StoreUnavailable):  # let WeChat's retry run it again
                await self._kv.delete(key)
            raise
        except Exception:
            log.exception("wechat handler failed on %s from %s", _label(inbound), mask_openid(inbound.openid))
            reply = self._texts.get("wechat_handler_error")
        self._note_store_up()  # both stores answered (the database may be down while Redis is not)
        try:  # remember the reply so a retry of the same message gets it again
            await self._kv.set(key, _REPLY + reply if reply else _NO_REPLY, ttl)
        except StoreUnavailable as exc:
            self._note_store_down(exc)
        return reply

    async def _run_owned(self, inbound: Inbound, key: str, lease: float) -> str | None:
        """The handler, with the pending marker's lease renewed while it runs."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(lease / 3)
                with contextlib.suppress(StoreUnavailable):
                    await self._kv.extend(key, _PENDING, lease)

        renewer = asyncio.get_running_loop().create_task(renew())
        try:
            return await self._handle(inbound) or None
        finally:
            renewer.cancel()

    async def _keep_late(self, task: asyncio.Task[str | None], inbound: Inbound, key: str) -> bool:
        """Past the deadline: keep the message durably, then push what its handler answers. Not
        kept (a store is down): a handler that fails drops its dedupe key, so that WeChat's retry
        (it gets 503 now) runs it again."""
        try:
            await self._late.keep(inbound)
            kept = True
        except StoreUnavailable as exc:
            self._note_store_down(exc)
            kept = False
        except Exception:
            log.exception("wechat %s from %s: not kept past the deadline", _label(inbound), mask_openid(inbound.openid))
            kept = False

        def on_done(t: asyncio.Task[str | None]) -> None:
            if not t.cancelled():
                self._spawn(self._finish_late(t, inbound, key, kept))

        task.add_done_callback(on_done)
        return kept

    async def _finish_late(self, task: asyncio.Task[str | None], inbound: Inbound, key: str, kept: bool) -> None:
        """Push what a handler past the deadline answered; then a retry of it gets `success`."""
        try:
            reply = task.result()
        except Exception as exc:
            if isinstance(exc, StoreUnavailable):
                self._note_store_down(exc)
            elif not isinstance(exc, LockTimeout):  # busy (the user's previous message), not a bug
                log.exception("wechat handler failed on %s from %s", _label(inbound), mask_openid(inbound.openid))
            with contextlib.suppress(StoreUnavailable):
                if kept:  # no longer running: the replay job may take it
                    await self._kv.set(key, _NO_REPLY, self._settings.dedupe_ttl)
                else:  # WeChat's retry (it got 503) runs it again
                    await self._kv.delete(key)
            if kept:
                log.warning("wechat %s from %s: %s; handled again later (kept past the deadline)",
                            _label(inbound), mask_openid(inbound.openid), type(exc).__name__)
            return
        try:
            await self._late.answered(inbound, reply)
        except Exception:  # if kept, handled again later (answered from its exactly-once record)
            log.exception("wechat late reply for %s to %s not stored", _label(inbound), mask_openid(inbound.openid))
            return
        try:
            await self._kv.set(key, _NO_REPLY, self._settings.dedupe_ttl)
        except StoreUnavailable as exc:
            self._note_store_down(exc)

    def _note_store_down(self, exc: StoreUnavailable) -> None:
        if not self._store_down:
            self._store_down = True
            log.warning("wechat: a store is unavailable (%s): answering 503 until it is back", exc)

    def _note_store_up(self) -> None:
        if self._store_down:
            self._store_down = False
            log.info("wechat: the stores are back")

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until no handler or late push is running (pushes spawned meanwhile included)."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, app: web.Application | None = None) -> None:
        """On shutdown: give running handlers a grace period, then cancel what is left."""
        try:
            await self.drain(_SHUTDOWN_GRACE)
        except TimeoutError:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


WEBHOOK_KEY = web.AppKey("zhitongche.wechat_webhook", WeChatWebhook)


def add_webhook_routes(
    app: web.Application,
    *,
    settings: Settings,
    kv: KeyValueStore,
    handle: Handle,
    late: LateMessages,
    texts: Texts | None = None,
) -> None:
    """Register GET/POST /wechat; the webhook object is app[WEBHOOK_KEY] (drain() in tests)."""
    webhook = WeChatWebhook(settings=settings, kv=kv, handle=handle, late=late, texts=texts)
    app[WEBHOOK_KEY] = webhook
    app.router.add_get("/wechat", webhook.verify)
    app.router.add_post("/wechat", webhook.receive)
    app.on_cleanup.append(webhook.close)


def render_text_reply(parsed: ParsedMessage, text: str) -> str:
    """wechatpy's passive text reply, from our account to the sender."""
    return TextReply(source=_cdata(parsed.account), target=_cdata(parsed.inbound.openid), content=_cdata(text)).render()


def _cdata(value: str) -> str:
    # wechatpy wraps strings in CDATA verbatim; a "]]>" inside would end it and inject markup.
    return value.replace("]]>", "]]]]><![CDATA[>")


def _label(inbound: Inbound) -> str:
    """Loggable description of a message (no openid)."""
    if inbound.kind == "event":
        return f"event {inbound.event}"
    return f"{inbound.kind} {inbound.msg_id}"


async def _read_bounded(request: web.Request, limit: int) -> bytes | None:
    """The body, or None as soon as it exceeds `limit` (Content-Length is only a first hint)."""
    if request.content_length is not None:
        # the HTTP parser reads no more than Content-Length says
        return None if request.content_length > limit else await request.read()
    buf = bytearray()  # chunked: counted as it comes
    async for chunk in request.content.iter_chunked(_CHUNK):
        buf += chunk
        if len(buf) > limit:
            return None
    return bytes(buf)
