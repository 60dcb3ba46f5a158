"""A local fake of the WeChat API endpoints we use, recording every call.

For tests and the demo sandbox: point settings.wechat_api_base at it. It issues tokens (a new
token invalidates the previous one, as on WeChat), checks them, and can be told to fail.
GET /_fake/calls?openid=…&since=N lists delivered messages for the chat simulator.

Template messages and 订阅通知 are checked as WeChat does since 2023 (bot/core/wechat_fields.py:
typed fields, values within their limits, no first/remark on templates; 47003 otherwise). A
订阅通知 needs a subscription of that user for that template (`grant_subscription`, as when the
user accepts WeChat's pop-up): one send per grant, or unlimited when long-term; else 43101; and
a template the account chose (`subscribe_templates`, when set; else 40037).
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import secrets
import struct
import time
import zlib
from collections import defaultdict
from typing import Any

from aiohttp import web

from bot.core.wechat_fields import problems

SUBSCRIBE_PATH = "/cgi-bin/message/subscribe/bizsend"
MESSAGE_PATHS = ("/cgi-bin/message/custom/send", "/cgi-bin/message/template/send", SUBSCRIBE_PATH)


class FakeWeChatAPI:
    def __init__(self, appid: str | None = None, secret: str | None = None, token_ttl: int = 7200) -> None:
        self.appid = appid  # None: any appid/secret is accepted
        self.secret = secret
        self.token_ttl = token_ttl
        self.calls: list[dict[str, Any]] = []
        self.token_fetches = 0
        self._token: str | None = None
        self._expired: set[str] = set()
        self._tickets: dict[str, str] = {}  # ticket → scene
        self._failures: dict[str, list[tuple[int, str]]] = defaultdict(list)
        self._http_failures: dict[str, list[int]] = defaultdict(list)
        self._hangs: dict[str, list[float]] = defaultdict(list)
        self.delay = 0.0  # seconds every message call takes before it is answered (a slow WeChat)
        self._seq = itertools.count()
        # mass messages and tags, with WeChat's limits (see the mass/tag section below)
        self.tags: dict[int, str] = {}
        self.tag_members: dict[int, set[str]] = defaultdict(set)
        self.mass_received: dict[str, list[str]] = defaultdict(list)  # openid → texts delivered
        self._mass_month: dict[tuple[str, str], int] = defaultdict(int)
        self._clientmsgids: dict[str, int] = {}
        self._tag_ids = itertools.count(100)
        self.templates: set[str] | None = None  # template ids the account has added (None: any)
        self.subscribe_templates: set[str] | None = None  # 订阅通知 template ids it has chosen (None: any)
        self.subscriptions: dict[tuple[str, str], int] = defaultdict(int)  # (openid, template id) → sends left
        self.long_term: set[tuple[str, str]] = set()
        self.mass_delay = 0.0  # seconds a mass call is answered late, after WeChat took it

    # --- knobs --------------------------------------------------------------------------------
    def fail_next(self, path: str, errcode: int, errmsg: str, times: int = 1) -> None:
        """The next `times` calls to `path` answer {errcode, errmsg} (e.g. 45015, 45047, 40001)."""
        self._failures[path].extend([(errcode, errmsg)] * times)

    def http_error_next(self, path: str, status: int = 502, times: int = 1) -> None:
        """The next `times` calls to `path` answer HTTP `status` (a 5xx from WeChat's front)."""
        self._http_failures[path].extend([status] * times)

    def hang_next(self, path: str, seconds: float = 3600.0, times: int = 1) -> None:
        """The next `times` calls to `path` get no answer for `seconds`, then a 504: WeChat did not
        take them (recorded with errcode -1)."""
        self._hangs[path].extend([seconds] * times)

    def grant_subscription(self, openid: str, template_id: str, *, long_term: bool = False) -> None:
        """The user accepted the subscription pop-up for this template (one send, or long-term)."""
        if long_term:
            self.long_term.add((openid, template_id))
        else:
            self.subscriptions[(openid, template_id)] += 1

    def expire_token(self) -> None:
        """The current token stops working (calls answer 42001) until a new one is fetched."""
        if self._token:
            self._expired.add(self._token)
        self._token = None

    @property
    def current_token(self) -> str | None:
        return self._token

    def messages(self, openid: str | None = None, since: int = 0, include_failed: bool = False) -> list[dict[str, Any]]:
        """Recorded outbound messages (customer-service and template), delivered ones by default."""
        return [
            c for c in self.calls
            if c["path"] in MESSAGE_PATHS
            and c["seq"] >= since
            and (openid is None or c["openid"] == openid)
            and (include_failed or c["errcode"] == 0)
        ]

    def sent_texts(self, openid: str | None = None) -> list[str]:
        """Texts of delivered customer-service messages, oldest first."""
        return [c["text"] for c in self.messages(openid) if c["msgtype"] == "text"]

    # --- the app ------------------------------------------------------------------------------
    def create_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cgi-bin/token", self._token_endpoint)
        app.router.add_post("/cgi-bin/message/custom/send", self._custom_send)
        app.router.add_post("/cgi-bin/message/template/send", self._template_send)
        app.router.add_post(SUBSCRIBE_PATH, self._subscribe_send)
        app.router.add_post("/cgi-bin/qrcode/create", self._qrcode_create)
        app.router.add_get("/cgi-bin/showqrcode", self._showqrcode)
        app.router.add_post("/cgi-bin/message/mass/send", self._mass_send)
        app.router.add_post("/cgi-bin/message/mass/sendall", self._mass_send)
        app.router.add_post("/cgi-bin/tags/create", self._tag_create)
        app.router.add_post("/cgi-bin/tags/members/batchtagging", self._batch_tag)
        app.router.add_post("/cgi-bin/tags/members/batchuntagging", self._batch_tag)
        app.router.add_get("/_fake/calls", self._list_calls)
        return app

    async def _record(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        body: Any = None
        if raw:
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                body = raw.decode("utf-8", "replace")
        query = {k: v for k, v in request.query.items() if k not in ("secret",)}  # no secrets kept
        call: dict[str, Any] = {
            "seq": next(self._seq),
            "path": request.path,
            "query": query,
            "json": body,
            "raw": raw.decode("utf-8", "replace"),  # as sent: shows whether Chinese was escaped
            "time": time.time(),
            "errcode": 0,
        }
        if isinstance(body, dict):
            call["openid"] = body.get("touser")
            kind = "subscribe" if request.path == SUBSCRIBE_PATH else "template" if "template_id" in body else ""
            call["msgtype"] = body.get("msgtype", kind)
            text = body.get("text")
            call["text"] = text.get("content", "") if isinstance(text, dict) else ""
            call["template_id"] = body.get("template_id", "")
            data = body.get("data")
            call["data"] = {k: (v.get("value") if isinstance(v, dict) else v) for k, v in data.items()} if isinstance(data, dict) else {}
        self.calls.append(call)
        return call

    def _answer(self, call: dict[str, Any], result: dict[str, Any]) -> web.Response:
        call["errcode"] = int(result.get("errcode", 0))
        return web.json_response(result, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    def _error(self, call: dict[str, Any]) -> dict[str, Any] | None:
        """A queued failure, else a token problem, else None."""
        queued = self._failures.get(call["path"])
        if queued:
            errcode, errmsg = queued.pop(0)
            return {"errcode": errcode, "errmsg": errmsg}
        if call["path"] in ("/cgi-bin/token", "/cgi-bin/showqrcode"):
            return None
        token = call["query"].get("access_token")
        if not token:
            return {"errcode": 41001, "errmsg": "access_token missing"}
        if token == self._token:
            return None
        if token in self._expired:
            return {"errcode": 42001, "errmsg": "access_token expired"}
        return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}

    async def _token_endpoint(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        self.token_fetches += 1
        q = request.query
        error = self._error(call)
        if error:
            return self._answer(call, error)
        if q.get("grant_type") != "client_credential":
            return self._answer(call, {"errcode": 40002, "errmsg": "invalid grant_type"})
        if self.appid is not None and q.get("appid") != self.appid:
            return self._answer(call, {"errcode": 40013, "errmsg": "invalid appid"})
        if self.secret is not None and q.get("secret") != self.secret:
            return self._answer(call, {"errcode": 40125, "errmsg": "invalid appsecret"})
        self._token = "FAKE" + secrets.token_hex(16)  # the previous token is now invalid
        return self._answer(call, {"access_token": self._token, "expires_in": self.token_ttl})

    async def _message_call(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        """Record a send; the refusal every message API gives (injected hang, HTTP error or
        errcode, no touser), if any."""
        call = await self._record(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._hangs.get(call["path"]):
            call["errcode"] = -1
            await asyncio.sleep(self._hangs[call["path"]].pop(0))
            return call, web.Response(status=504, text="gateway timeout")
        if self._http_failures.get(call["path"]):
            call["errcode"] = -1
            return call, web.Response(status=self._http_failures[call["path"]].pop(0), text="bad gateway")
        error = self._error(call)
        if error:
            return call, self._answer(call, error)
        body = call["json"]
        if not isinstance(body, dict) or not body.get("touser"):
            return call, self._answer(call, {"errcode": 40003, "errmsg": "invalid openid"})
        return call, None

    async def _custom_send(self, request: web.Request) -> web.Response:
        call, refused = await self._message_call(request)
        if refused:
            return refused
        if call["json"].get("msgtype") == "text" and not call["text"]:
            return self._answer(call, {"errcode": 44003, "errmsg": "empty news data"})
        return self._answer(call, {"errcode": 0, "errmsg": "ok"})

    async def _template_send(self, request: web.Request) -> web.Response:
        call, refused = await self._message_call(request)
        if refused:
            return refused
        template_id = call["json"].get("template_id")
        if not template_id or (self.templates is not None and template_id not in self.templates):
            return self._answer(call, {"errcode": 40037, "errmsg": "invalid template_id"})
        if bad := problems(call["data"], template=True):
            return self._answer(call, {"errcode": 47003, "errmsg": f"argument invalid! {bad[0]}"})
        return self._answer(call, {"errcode": 0, "errmsg": "ok", "msgid": 200228332 + call["seq"]})

    async def _subscribe_send(self, request: web.Request) -> web.Response:
        call, refused = await self._message_call(request)
        if refused:
            return refused
        template_id = str(call["json"].get("template_id") or "")
        if not template_id or (self.subscribe_templates is not None and template_id not in self.subscribe_templates):
            return self._answer(call, {"errcode": 40037, "errmsg": "invalid template_id"})
        if bad := problems(call["data"], template=False):
            return self._answer(call, {"errcode": 47003, "errmsg": f"argument invalid! {bad[0]}"})
        key = (call["openid"], template_id)
        if key not in self.long_term:
            if self.subscriptions[key] <= 0:
                return self._answer(call, {"errcode": 43101, "errmsg": "user refuse to accept the msg"})
            self.subscriptions[key] -= 1
        return self._answer(call, {"errcode": 0, "errmsg": "ok"})

    async def _qrcode_create(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        error = self._error(call)
        if error:
            return self._answer(call, error)
        body = call["json"] if isinstance(call["json"], dict) else {}
        scene = ((body.get("action_info") or {}).get("scene") or {}).get("scene_str", "")
        if body.get("action_name") != "QR_LIMIT_STR_SCENE" or not 1 <= len(scene) <= 64:
            return self._answer(call, {"errcode": 40053, "errmsg": "invalid action info"})
        ticket = "gQ" + hashlib.sha1(scene.encode()).hexdigest()
        self._tickets[ticket] = scene
        return self._answer(call, {"ticket": ticket, "url": f"http://weixin.qq.com/q/{ticket[:22]}"})

    async def _showqrcode(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        error = self._error(call)
        if error:
            return self._answer(call, error)
        scene = self._tickets.get(request.query.get("ticket", ""))
        if scene is None:
            return self._answer(call, {"errcode": 40007, "errmsg": "invalid ticket"})
        return web.Response(body=placeholder_png(scene), content_type="image/png")

    # --- mass messages and tags -----------------------------------------------------------------
    MASS_MONTHLY_LIMIT = 4  # per user and calendar month: WeChat does not deliver a fifth
    MAX_TAGS = 100
    MAX_BATCH_TAGGING = 50

    def mass_calls(self) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["path"].startswith("/cgi-bin/message/mass/")]

    async def _mass_send(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        error = self._error(call)
        if error:
            return self._answer(call, error)
        body = call["json"] if isinstance(call["json"], dict) else {}
        clientmsgid = str(body.get("clientmsgid", ""))
        if clientmsgid and clientmsgid in self._clientmsgids:
            return self._answer(call, {"errcode": 45065, "errmsg": "clientmsgid exist",
                                       "msg_id": self._clientmsgids[clientmsgid]})
        if request.path.endswith("/sendall"):
            tag_id = (body.get("filter") or {}).get("tag_id")
            if tag_id not in self.tags:
                return self._answer(call, {"errcode": 40050, "errmsg": "invalid tag id"})
            touser = sorted(self.tag_members[tag_id])
        else:
            touser = body.get("touser")
            if not isinstance(touser, list) or not 2 <= len(touser) <= 10000:
                return self._answer(call, {"errcode": 40130, "errmsg": "invalid openid list size, at least two openid"})
        text = ((body.get("text") or {}).get("content")) or ""
        month = time.strftime("%Y-%m")
        over = 0
        for openid in touser:
            if self._mass_month[(openid, month)] >= self.MASS_MONTHLY_LIMIT:
                over += 1  # WeChat skips them (the job's report counts them as filtered)
                continue
            self._mass_month[(openid, month)] += 1
            self.mass_received[openid].append(text)
        call["mass_to"] = len(touser)
        call["over_limit"] = over
        msg_id = 1000000 + call["seq"]
        if clientmsgid:
            self._clientmsgids[clientmsgid] = msg_id
        if self.mass_delay:
            await asyncio.sleep(self.mass_delay)  # taken already: a sender killed meanwhile never hears it
        return self._answer(call, {"errcode": 0, "errmsg": "send job submission success", "msg_id": msg_id})

    async def _tag_create(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        error = self._error(call)
        if error:
            return self._answer(call, error)
        name = (((call["json"] or {}).get("tag") or {}).get("name")) if isinstance(call["json"], dict) else None
        if not name or len(name) > 30:
            return self._answer(call, {"errcode": 45158, "errmsg": "tag name too long"})
        if name in self.tags.values():
            return self._answer(call, {"errcode": 45157, "errmsg": "invalid tag name"})
        if len(self.tags) >= self.MAX_TAGS:
            return self._answer(call, {"errcode": 45056, "errmsg": "too many tags"})
        tag_id = next(self._tag_ids)
        self.tags[tag_id] = name
        return self._answer(call, {"tag": {"id": tag_id, "name": name}})

    async def _batch_tag(self, request: web.Request) -> web.Response:
        call = await self._record(request)
        error = self._error(call)
        if error:
            return self._answer(call, error)
        body = call["json"] if isinstance(call["json"], dict) else {}
        openids, tag_id = body.get("openid_list"), body.get("tagid")
        if tag_id not in self.tags:
            return self._answer(call, {"errcode": 45159, "errmsg": "invalid tag"})
        if not isinstance(openids, list) or not openids:
            return self._answer(call, {"errcode": 40003, "errmsg": "invalid openid"})
        if len(openids) > self.MAX_BATCH_TAGGING:
            return self._answer(call, {"errcode": 40032, "errmsg": "invalid openid list size, no more than 50"})
        if request.path.endswith("batchuntagging"):
            self.tag_members[tag_id] -= set(openids)
        else:
            self.tag_members[tag_id] |= set(openids)
        return self._answer(call, {"errcode": 0, "errmsg": "ok"})

    async def _list_calls(self, request: web.Request) -> web.Response:
        # Not recorded itself: the simulator polls this.
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            return web.json_response({"error": "since must be an integer"}, status=400)
        openid = request.query.get("openid") or None
        include_failed = request.query.get("all") in ("1", "true")
        messages = [
            {k: c.get(k) for k in ("seq", "path", "openid", "msgtype", "text", "template_id", "data", "time", "errcode")}
            for c in self.messages(openid, since, include_failed)
        ]
        return web.json_response(
            {"messages": messages, "next": len(self.calls)},
            dumps=lambda o: json.dumps(o, ensure_ascii=False),
        )


def placeholder_png(seed: str, modules: int = 21, scale: int = 8) -> bytes:
    """A real, small black-and-white PNG: a QR-looking grid derived from `seed` (not scannable)."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    bits = "".join(f"{b:08b}" for b in digest * ((modules * modules) // 256 + 1))

    def dark(x: int, y: int) -> bool:
        for fx, fy in ((0, 0), (modules - 7, 0), (0, modules - 7)):  # the three finder squares
            if fx <= x < fx + 7 and fy <= y < fy + 7:
                dx, dy = x - fx, y - fy
                return dx in (0, 6) or dy in (0, 6) or (2 <= dx <= 4 and 2 <= dy <= 4)
        return bits[y * modules + x] == "1"

    quiet = 4
    size = (modules + 2 * quiet) * scale
    rows = []
    for py in range(size):
        y = py // scale - quiet
        row = bytearray([0])  # filter type: none
        for px in range(size):
            x = px // scale - quiet
            inside = 0 <= x < modules and 0 <= y < modules
            row.append(0 if inside and dark(x, y) else 255)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)  # 8-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"".join(rows), 9)) + chunk(b"IEND", b"")
