"""The chat simulator: a web page where you play a citizen or a deputy and talk to the bot.

The page posts to `/sim/send`; this backend turns it into the XML WeChat would send, signs it (and
encrypts it in safe mode), posts it to the bot's webhook and reads the passive reply. Pushed messages
(customer-service and template messages) come from the fake WeChat API's record of outbound calls.
"""
from __future__ import annotations

import csv
import logging
import secrets
from pathlib import Path
from typing import Any

import aiohttp
import jinja2
import yaml
from aiohttp import web

from bot.settings import CONFIG_DIR
from bot.texts import TEXTS_DIR, default_texts
from bot.wechat import platform
from bot.wechat.crypto import InvalidSignature, MessageCrypto
from bot.wechat.inbound import QRSCENE_PREFIX
from bot.wechat.platform import SignedRequest

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
DEMO_STATIONS = CONFIG_DIR / "demo" / "stations.csv"
ACCOUNT_ID = "gh_ztc_demo0001"  # the official account's original id (ToUserName)
WEBHOOK_TIMEOUT = 15.0  # longer than WeChat's 5 s: the simulator shows slow replies instead of hiding them
MESSAGE_KINDS = ("text", "image", "voice", "location", "subscribe", "scan")
EVENT_KINDS = ("subscribe", "scan")
WUJIANG_CENTRE = (31.1605, 120.6422)  # 松陵: where a location message is sent from (the page sends only a label)

_jinja = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)

K_CONFIG = web.AppKey("sim_config", dict)
K_HTTP = web.AppKey("sim_http", aiohttp.ClientSession)
K_LAST = web.AppKey("sim_last", dict)  # openid -> last SignedRequest, for 模拟微信重试


def load_stations(path: Path = DEMO_STATIONS) -> list[dict[str, str]]:
    """Stations offered in the 扫码关注 picker: [{"code", "name", "town"}]."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as f:
        return [
            {"code": row["code"], "name": row.get("name", ""), "town": row.get("town", "")}
            for row in csv.DictReader(f)
            if row.get("code")
        ]


def _group(identity: dict[str, Any]) -> str:
    # "市民 张阿姨" / "代表 沈某甲（…）": the first word says who it is
    if identity.get("group"):
        return str(identity["group"])
    label = str(identity.get("label") or "")
    return label.split(" ", 1)[0] if " " in label else ""


def create_simulator_app(
    *,
    webhook_url: str,
    fake_api_url: str,
    settings: Any,
    identities: list[dict],
    stations: list[dict[str, str]] | None = None,
    safe_mode_default: bool = False,
) -> web.Application:
    """The simulator as an aiohttp application (serve it on its own, or mount it with add_subapp).

    `identities`: [{"openid", "label"}] offered in the 我是 picker. `stations`: the QR-code picker;
    defaults to config/demo/stations.csv. `safe_mode_default`: the 安全模式 switch starts on (a
    webhook in safe mode refuses plaintext, as it should)."""
    texts = default_texts()
    sim_texts = {key: texts.get(key) for key in _sim_text_keys()}
    app = web.Application(client_max_size=1024 * 1024)
    app[K_CONFIG] = {
        "webhook_url": webhook_url,
        "fake_api_url": fake_api_url.rstrip("/"),
        "token": settings.wechat_token,
        "aes_key": settings.wechat_aes_key or "",
        "crypto": MessageCrypto(settings.wechat_token, settings.wechat_aes_key, settings.wechat_appid)
        if settings.wechat_aes_key else None,
        "identities": [
            {"openid": str(i["openid"]), "label": str(i.get("label") or i["openid"]), "group": _group(i)}
            for i in identities
        ],
        "stations": stations if stations is not None else load_stations(),
        "texts": sim_texts,
        "safe_mode_default": safe_mode_default and bool(settings.wechat_aes_key),
    }
    app[K_LAST] = {}
    app.cleanup_ctx.append(_http_session)
    app.router.add_get("/", page, name="page")
    app.router.add_post("/sim/send", send, name="send")
    app.router.add_post("/sim/resend", resend, name="resend")
    app.router.add_get("/sim/pushes", pushes, name="pushes")
    app.router.add_static("/sim/static", HERE / "static", name="static")
    app.router.add_get("/favicon.ico", favicon)  # browsers ask for it whatever the page says
    return app


def _sim_text_keys() -> list[str]:
    # every key of the simulator's own text file; values still come through Texts
    data = yaml.safe_load((TEXTS_DIR / "simulator.yaml").read_text(encoding="utf-8")) or {}
    return [key for key in data if key.startswith("sim_")]


async def _http_session(app: web.Application):
    app[K_HTTP] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT))
    yield
    await app[K_HTTP].close()


async def page(request: web.Request) -> web.Response:
    config = request.app[K_CONFIG]
    router = request.app.router
    # url_for keeps the page working both standalone and mounted under a prefix
    urls = {
        "send": str(router["send"].url_for()),
        "resend": str(router["resend"].url_for()),
        "pushes": str(router["pushes"].url_for()),
    }
    static = lambda name: str(router["static"].url_for(filename=name))  # noqa: E731
    client_config = {
        "urls": urls,
        "texts": config["texts"],
        "safe_mode_available": bool(config["aes_key"]),
        "safe_mode_default": config["safe_mode_default"],
        "identities": config["identities"],
    }
    groups: dict[str, list[dict]] = {}
    for identity in config["identities"]:
        groups.setdefault(identity["group"] or config["texts"]["sim_group_other"], []).append(identity)
    html = _jinja.get_template("simulator.html").render(
        t=config["texts"],
        groups=groups,
        stations=config["stations"],
        safe_mode_available=bool(config["aes_key"]),
        client_config=client_config,
        css_url=static("simulator.css"),
        js_url=static("simulator.js"),
        favicon_url=static("favicon.svg"),
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8")


async def favicon(request: web.Request) -> web.FileResponse:
    return web.FileResponse(HERE / "static" / "favicon.svg", headers={"Content-Type": "image/svg+xml"})


def _bad_request(message: str) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=400)


async def send(request: web.Request) -> web.Response:
    """Body: {"openid", "kind", "text"?, "label"?, "scene"?, "safe"?}. Posts real WeChat XML to the
    webhook and answers {"ok", "status", "request": {...}, "reply": {...} | null, "error"?}."""
    config = request.app[K_CONFIG]
    try:
        data = await request.json()
    except ValueError:
        return _bad_request("body is not JSON")
    if not isinstance(data, dict):
        return _bad_request("body must be a JSON object")
    openid = str(data.get("openid") or "")
    kind = str(data.get("kind") or "text")
    if not openid:
        return _bad_request("openid is required")
    if kind not in MESSAGE_KINDS:
        return _bad_request(f"unknown kind {kind!r}")
    crypto = config["crypto"] if data.get("safe") else None
    msg_id = "" if kind in EVENT_KINDS else str(platform.next_msg_id())
    xml = _inbound_xml(kind, openid, msg_id, data)
    signed = platform.signed_request(config["token"], xml, crypto=crypto, openid=openid)
    safe = crypto is not None
    request.app[K_LAST][openid] = (signed, xml, safe)
    return web.json_response(await _deliver(request.app, signed, xml, safe, msg_id=msg_id))


def _inbound_xml(kind: str, openid: str, msg_id: str, data: dict[str, Any]) -> str:
    """The plaintext XML WeChat posts for what the user did on the page."""
    text, scene = str(data.get("text") or ""), str(data.get("scene") or "")
    if kind == "subscribe":
        if not scene:
            return platform.event_xml(openid, ACCOUNT_ID, "subscribe")
        # a follow through a parametric QR code: the scene comes prefixed with qrscene_
        return platform.event_xml(openid, ACCOUNT_ID, "subscribe", QRSCENE_PREFIX + scene, Ticket=_ticket())
    if kind == "scan":  # an existing follower scanning a QR code: SCAN, and the scene without prefix
        return platform.event_xml(openid, ACCOUNT_ID, "SCAN", scene, Ticket=_ticket())
    if kind == "image":
        return platform.image_xml(openid, ACCOUNT_ID, msg_id=msg_id)
    if kind == "voice":
        return platform.voice_xml(openid, ACCOUNT_ID, text, msg_id=msg_id)
    if kind == "location":
        label = str(data.get("label") or "")
        return platform.location_xml(openid, ACCOUNT_ID, *WUJIANG_CENTRE, label, msg_id=msg_id)
    return platform.text_xml(openid, ACCOUNT_ID, text, msg_id=msg_id)


def _ticket() -> str:
    return "gQ" + secrets.token_hex(16)


async def resend(request: web.Request) -> web.Response:
    """WeChat's retry: the identical request again (same MsgId, same signature)."""
    try:
        data = await request.json()
    except ValueError:
        return _bad_request("body is not JSON")
    openid = str((data or {}).get("openid") or "") if isinstance(data, dict) else ""
    last = request.app[K_LAST].get(openid)
    if last is None:
        return _bad_request("nothing sent yet for this openid")
    signed, xml, safe = last
    return web.json_response(await _deliver(request.app, signed, xml, safe, msg_id="", retry=True))


async def _deliver(
    app: web.Application, signed: SignedRequest, xml: str, safe: bool, *, msg_id: str, retry: bool = False
) -> dict[str, Any]:
    config = app[K_CONFIG]
    result: dict[str, Any] = {
        "ok": False,
        "status": 0,
        "retry": retry,
        "request": {"xml": xml, "params": signed.query, "body": signed.body, "encrypted": safe, "msg_id": msg_id},
        "reply": None,
    }
    try:
        async with app[K_HTTP].post(
            config["webhook_url"],
            params=signed.query,
            data=signed.body.encode("utf-8"),
            headers={"Content-Type": "text/xml; charset=utf-8"},
        ) as response:
            result["status"] = response.status
            body = await response.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("simulator: webhook %s unreachable: %r", config["webhook_url"], exc)
        result["error"] = config["texts"]["sim_unreachable"].format(error=type(exc).__name__)
        return result
    if response.status != 200:
        result["error"] = config["texts"]["sim_http_error"].format(status=response.status)
        result["response_body"] = body[:2000]
        return result
    try:
        reply = platform.read_reply(body, config["crypto"])
    except (ValueError, InvalidSignature) as exc:  # not XML, cannot decrypt, forged MsgSignature
        result["error"] = config["texts"]["sim_bad_reply"].format(error=f"{type(exc).__name__}: {exc}")
        result["response_body"] = body[:2000]
        return result
    result["ok"] = True
    if reply is not None:
        msg_type = reply.fields.get("MsgType", "")
        text = reply.fields.get("Content", "") if msg_type == "text" else f"[{msg_type or '?'}]"
        result["reply"] = {"msg_type": msg_type, "text": text, "xml": reply.xml, "encrypted": reply.encrypted}
    return result


async def pushes(request: web.Request) -> web.Response:
    """Messages the bot pushed since cursor `since` (to `openid`, or to anyone when omitted):
    {"messages": [{"key", "openid", "via", "text"}], "next": <cursor>}. On error: none, same cursor,
    so the page's polling never breaks."""
    config = request.app[K_CONFIG]
    openid = request.query.get("openid") or None
    try:
        since = max(0, int(request.query.get("since", "0")))
    except ValueError:
        since = 0
    params = {"since": str(since)}
    if openid:
        params["openid"] = openid
    try:
        async with request.app[K_HTTP].get(
            f"{config['fake_api_url']}/_fake/calls", params=params, timeout=aiohttp.ClientTimeout(total=5)
        ) as response:
            if response.status != 200:
                return web.json_response({"messages": [], "next": since, "error": f"HTTP {response.status}"})
            payload = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return web.json_response({"messages": [], "next": since, "error": type(exc).__name__})
    # bot/wechat/fake_api.py lists delivered messages only: {"messages": [{seq, path, openid, msgtype,
    # text, template_id, data, …}], "next": N}, `next` also skipping calls that are not messages
    messages = [{"key": m["seq"], **_push(m)} for m in payload["messages"]]
    return web.json_response({"messages": messages, "next": payload["next"]})


def _push(message: dict[str, Any]) -> dict[str, str]:
    """A message the fake WeChat API recorded, as the user sees it: {"openid", "via", "text"}."""
    if message["path"].endswith(("/template/send", "/subscribe/bizsend")):
        via = "template" if message["path"].endswith("/template/send") else "subscribe"
        text = "\n".join(str(v) for v in (message["data"] or {}).values() if v)
        return {"openid": message["openid"], "via": via, "text": text or f"[{message['template_id']}]"}
    text = message["text"] if message["msgtype"] == "text" else f"[{message['msgtype']}]"
    return {"openid": message["openid"], "via": "customer_service", "text": text}
