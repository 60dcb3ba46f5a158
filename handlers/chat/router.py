"""Routers, scenes and the dispatcher that runs one inbound message through them.

A router takes some kinds of inbound (its filter) and answers with the reply text, or says "not
mine" by returning None; the first answer wins. A scene is a router that only runs while the user
is in it (its state, see chat.state), can start itself when the user is not, and says what to
remind the user of when something else answers meanwhile.

Kinds (what a filter names):
  text · voice (a voice message with recognised text: handled like text, the voice kept with it)
  · attachment (a photo, a location, a voice message with no recognised text) · other (video,
  link, …) · click:<menu key> · subscribe · scan · unsubscribe (events; other events: nothing)
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core.parse import ParseResult
from bot.core.privacy import mask_openid
from bot.core.tickets import Attachment
from bot.core import keys
from bot.core.inbound import FIRST_DELIVERY, Inbound
from bot.texts import Texts
from dialogues.words import Words
from handlers import delivery
from handlers.bus import handling_inbound
from handlers.chat.state import SceneState, SceneStore
from handlers.services import Services

log = logging.getLogger(__name__)

Handler = Callable[["Context"], Awaitable[str | None]]
TEXTS = frozenset({"text", "voice"})
MESSAGES = frozenset({"text", "voice", "attachment", "other"})


def kind_of(inbound: Inbound) -> str:
    if inbound.kind == "event":
        event = inbound.event.lower()
        return f"click:{inbound.event_key}" if event == "click" else event
    if inbound.kind == "text" or (inbound.kind == "voice" and inbound.text.strip()):
        return inbound.kind
    if inbound.kind in ("image", "voice", "location"):
        return "attachment"
    return "other"


def _attachment_of(inbound: Inbound) -> Attachment | None:
    if inbound.kind == "image":
        return Attachment("image", media_id=inbound.media_id, url=inbound.pic_url)
    if inbound.kind == "voice":
        return Attachment("voice", media_id=inbound.media_id, text=inbound.text)
    if inbound.kind == "location":
        return Attachment("location", text=inbound.label.strip() or f"{inbound.latitude},{inbound.longitude}")
    return None


def _no_reads(openid: str) -> Sequence[str]:
    return ()


@dataclass(frozen=True)
class Router:
    name: str
    handle: Handler
    kinds: frozenset[str]
    # the key-value keys its handler reads for this user: read ahead with the scene (handlers/read_ahead.py)
    reads: Callable[[str], Sequence[str]] = _no_reads

    def takes(self, kind: str) -> bool:
        return kind in self.kinds


@dataclass(frozen=True)
class Scene:
    """A chat mode with state. `handle` runs while the user is in this scene; `start` (a plain
    router) when they are not. The state's data is a dict (the scene's own shape)."""

    name: str
    handle: Handler
    kinds: frozenset[str]
    ttl: Callable[[Services], float]  # seconds after the last answer
    reminder: Callable[[Context], str]  # appended when a later router answers mid-scene
    start: Router | None = None
    expired_text: str = ""  # said (with {minutes}) when an answer arrives after expiry …
    is_answer: Callable[[Context], bool] = lambda ctx: False  # … and the text looks like one
    lost_text: str = ""  # said when an answer arrives after the key-value store lost the state

    def takes(self, kind: str) -> bool:
        return kind in self.kinds or (self.start is not None and self.start.takes(kind))


@dataclass
class Context:
    """One inbound message being routed: the services, the message, the user's scene state."""

    services: Services
    inbound: Inbound
    words: Words
    store: SceneStore
    scenes: dict[str, Scene]
    state: SceneState | None = None  # the live scene, if any
    expired: SceneState | None = None  # a scene that expired unanswered
    lost: str | None = None  # a scene whose state the key-value store lost (came back empty)
    kind: str = field(init=False)  # what the routers' filters name (see the module docstring)
    scene_changed: bool = False  # a scene was entered or left while handling this message
    _parse: ParseResult | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.kind = kind_of(self.inbound)

    @property
    def openid(self) -> str:
        return self.inbound.openid

    @property
    def texts(self) -> Texts:
        return self.services.texts

    @property
    def text(self) -> str:
        return self.inbound.text.strip() if self.kind in TEXTS else ""

    @property
    def attachment(self) -> Attachment | None:
        """The photo, voice or location of this message."""
        return _attachment_of(self.inbound)

    async def parse(self) -> ParseResult:
        """The NLU's reading of the text, asked at most once per message; never raises."""
        if self._parse is None:
            try:
                self._parse = await self.services.nlu.parse(self.text)
            except Exception:  # noqa: BLE001 - the NLU must never take the conversation down
                log.exception("NLU parse failed")
                self._parse = ParseResult.fallback(self.text)
        return self._parse

    def in_scene(self, name: str) -> bool:
        return self.state is not None and self.state.scene == name

    async def enter(self, scene: str, data: dict[str, Any]) -> None:
        """Put the user in `scene` (leaving any other: one scene at a time)."""
        self.state = await self.store.enter(self.openid, scene, data, self.scenes[scene].ttl(self.services))
        self.scene_changed = True

    async def save(self, data: dict[str, Any]) -> None:
        assert self.state is not None, "save() outside a scene"
        self.state.data = data
        await self.store.save(self.openid, self.state, self.scenes[self.state.scene].ttl(self.services))

    async def leave(self) -> None:
        await self.store.clear(self.openid)
        self.state = None
        self.scene_changed = True


class Dispatcher:
    """Runs each inbound message through the routers, in order, under the user's lock."""

    def __init__(self, services: Services, routers: Sequence[Router | Scene]) -> None:
        self.services = services
        self.routers = tuple(routers)
        self.scenes = {r.name: r for r in self.routers if isinstance(r, Scene)}
        scene_positions = [i for i, r in enumerate(self.routers) if isinstance(r, Scene)]
        self._after_scenes = scene_positions[-1] + 1 if scene_positions else 0
        self.store = SceneStore(services.kv, services.clock, services.uow)
        self.words = Words.from_texts(services.texts)
        plain = [r.start if isinstance(r, Scene) else r for r in self.routers]
        self._readers = tuple(r for r in plain if r is not None and r.reads is not _no_reads)

    async def handle(self, inbound: Inbound) -> str | None:
        if not inbound.openid:
            return None
        kv = self.services.kv
        # before any state is loaded: two quick messages of one user never race on it; what the
        # message reads of the key-value store comes with the lock, in one round trip
        async with kv.lock(keys.user_lock(inbound.openid), timeout=self.services.settings.user_lock_wait,
                           read=self._reads(inbound)):
            try:
                with handling_inbound(inbound.dedupe_key) as scope:
                    # a retry after a crash or a Redis loss: answered from the record of its effect
                    done = None if FIRST_DELIVERY.get() else await self._processed(inbound)
                    if done is not None:
                        return done
                    reply = await self._answer(Context(self.services, inbound, self.words, self.store, self.scenes))
                    if scope.recorded is not None and reply:
                        await self._remember_reply(scope.recorded.key, reply)
                    return reply
            finally:
                kv.done()

    def _reads(self, inbound: Inbound) -> list[str]:
        """The keys the user's scene and the routers that take this message read."""
        kind = kind_of(inbound)
        return [*self.store.read_keys(inbound.openid),
                *(key for r in self._readers if r.takes(kind) for key in r.reads(inbound.openid))]

    async def _processed(self, inbound: Inbound) -> str | None:
        """The answer to a message whose effect is already stored (a retry after a crash or after
        the key-value store lost its dedupe key), or None when it was not handled yet."""
        async with self.services.uow() as uow:
            record = await uow.processed_inbound.get(inbound.dedupe_key)
        if record is None:
            return None
        log.info("inbound %s from %s was handled before: answered from its record",
                 inbound.msg_id or inbound.event, mask_openid(inbound.openid))
        if record.reply:
            return record.reply
        if record.ticket_number is not None:
            return self.services.texts.get("inbound_already_handled_ticket", number=record.ticket_number)
        return self.services.texts.get("inbound_already_handled")

    async def _remember_reply(self, key: str, reply: str) -> None:
        try:
            async with self.services.uow() as uow:
                await uow.processed_inbound.set_reply(key, reply)
                await uow.commit()
        except Exception:  # noqa: BLE001 - the effect is stored; a retry then gets a general answer
            log.exception("could not store the reply of inbound %s", key)

    async def _answer(self, ctx: Context) -> str | None:
        inbound = ctx.inbound
        state, checked, epoch = await self.store.load_checked(inbound.openid)  # read with the lock
        if state is not None and state.scene not in self.scenes:  # a mode since removed
            await self.store.clear(inbound.openid)
            state = None
        if state is not None and state.expired(self.services.clock.now()):
            ctx.expired = state
        else:
            ctx.state = state
        if state is None and ctx.kind in TEXTS:
            ctx.lost = await self.store.lost(inbound.openid, checked=checked, epoch=epoch)
        released = 0
        if inbound.kind != "event" or any(r.takes(ctx.kind) for r in self.routers):
            released = await self._open_window(ctx)
        try:
            return await self._route(ctx)
        finally:
            if released:  # after the message's own change: a notice it made stale is dropped, not sent
                self.services.kick_delivery()

    async def _route(self, ctx: Context) -> str | None:
        for position, router in enumerate(self.routers):
            if not router.takes(ctx.kind):
                continue
            reply = await self._run(router, ctx)
            if reply is None:
                continue
            if position >= self._after_scenes and ctx.state is not None and not ctx.scene_changed:
                reply += "\n\n" + self.scenes[ctx.state.scene].reminder(ctx)
            return reply
        return None

    async def _run(self, router: Router | Scene, ctx: Context) -> str | None:
        if not isinstance(router, Scene):
            return await router.handle(ctx)
        if ctx.in_scene(router.name):
            return await router.handle(ctx) if ctx.kind in router.kinds else None
        if ctx.expired is not None and ctx.expired.scene == router.name and ctx.kind in TEXTS:
            reply = await self._expired(router, ctx)
            if reply is not None:
                return reply
        if ctx.lost == router.name and router.lost_text and router.is_answer(ctx):
            ctx.lost = None
            await self.store.clear(ctx.openid)  # said once
            return ctx.texts.get(router.lost_text)
        if router.start is not None and router.start.takes(ctx.kind):
            return await router.start.handle(ctx)
        return None

    async def _expired(self, scene: Scene, ctx: Context) -> str | None:
        """The first text after a scene expired: said once, and only when it answers the scene."""
        ctx.expired = None
        await self.store.clear(ctx.openid)
        if scene.expired_text and scene.is_answer(ctx):
            return ctx.texts.get(scene.expired_text, minutes=int(scene.ttl(self.services) // 60))
        return None

    async def _open_window(self, ctx: Context) -> int:
        """The user wrote (or followed/scanned/clicked): WeChat's window opens, held pushes go.
        A failure here must not cost the user their answer; it is logged loudly."""
        event = ctx.inbound.event if ctx.inbound.kind == "event" else ""
        try:
            # releases held ones too (returns how many: delivery is kicked after the routers)
            return await delivery.record_inbound(self.services, ctx.openid, event=event, kick=False)
        except Exception:  # noqa: BLE001 - bookkeeping must not swallow the reply
            log.exception("messaging window update failed for %s", mask_openid(ctx.openid))
            return 0
