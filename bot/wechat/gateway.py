"""bot.core.ports.WeChatGateway over aiohttp: every WeChat API call, token fetch included, against
settings.wechat_api_base. Never wechatpy's synchronous client: this runs on the event loop."""
from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp

from bot.core.ports import KeyValueStore, WeChatAPIError
from bot.core.privacy import mask_openid
from bot.settings import Settings
from bot.wechat.token import TOKEN_ERRCODES, AccessTokenManager

log = logging.getLogger(__name__)

# errcode for "could not reach WeChat": the same as WeChat's own -1 "system busy" — retry later.
TRANSPORT_ERRCODE = -1
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)


class HttpWeChatGateway:
    def __init__(
        self,
        settings: Settings,
        kv: KeyValueStore,
        session: aiohttp.ClientSession | None = None,
        *,
        timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
    ) -> None:
        self._settings = settings
        self._base = settings.wechat_api_base.rstrip("/")
        self._session = session
        self._owns_session = session is None
        self._timeout = timeout
        self.tokens = AccessTokenManager(kv, self._fetch_token)

    # --- the port -----------------------------------------------------------------------------
    async def send_text(self, openid: str, text: str) -> None:
        await self._call("/cgi-bin/message/custom/send", {"touser": openid, "msgtype": "text", "text": {"content": text}})
        log.info("wechat custom message sent to %s", mask_openid(openid))

    async def send_template(self, openid: str, template_id: str, data: dict[str, str], url: str = "") -> None:
        payload = _fields_payload(openid, template_id, data)
        if url:
            payload["url"] = url
        await self._call("/cgi-bin/message/template/send", payload)
        log.info("wechat template message sent to %s", mask_openid(openid))

    async def send_subscribe(self, openid: str, template_id: str, data: dict[str, str], page: str = "") -> None:
        payload = _fields_payload(openid, template_id, data)
        if page:
            payload["page"] = page  # a web page here (no mini program)
        await self._call("/cgi-bin/message/subscribe/bizsend", payload)
        log.info("wechat subscribe message sent to %s", mask_openid(openid))

    async def create_qrcode(self, scene: str) -> bytes:
        """A permanent string-scene QR code; the image bytes as showqrcode serves them."""
        result = await self._call(
            "/cgi-bin/qrcode/create",
            {"action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": scene}}},
        )
        ticket = result.get("ticket")
        if not ticket:
            raise WeChatAPIError(TRANSPORT_ERRCODE, "qrcode/create answered without a ticket")
        session = self._get_session()
        try:
            async with session.get(f"{self._base}/cgi-bin/showqrcode", params={"ticket": ticket}) as resp:
                body = await resp.read()
                if resp.content_type == "application/json" or resp.content_type.startswith("text/"):
                    _check(_decode(body, resp.status))
                    raise WeChatAPIError(TRANSPORT_ERRCODE, "showqrcode answered without an image")
                if resp.status != 200:
                    raise WeChatAPIError(TRANSPORT_ERRCODE, f"showqrcode HTTP {resp.status}")
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error("showqrcode", exc) from exc

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    # --- plumbing -----------------------------------------------------------------------------
    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._owns_session = True
        return self._session

    async def _call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST with the access_token; a rejected token is dropped, refetched and retried once."""
        # ensure_ascii=False: WeChat shows \\uXXXX escapes literally in some message APIs.
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        for attempt in (1, 2):
            token = await self.tokens.get()
            result = await self._post(path, token, data)
            errcode = _errcode(result)
            if errcode in TOKEN_ERRCODES and attempt == 1:
                log.warning("wechat %s: token rejected (%s), refetching once", path, errcode)
                await self.tokens.invalidate(token)
                continue
            _check(result)
            return result
        raise AssertionError("unreachable")

    async def _post(self, path: str, token: str, data: bytes) -> dict[str, Any]:
        session = self._get_session()
        try:
            async with session.post(
                self._base + path,
                params={"access_token": token},
                data=data,
                headers={"Content-Type": "application/json; charset=utf-8"},
            ) as resp:
                return _decode(await resp.read(), resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error(path, exc) from exc

    async def _fetch_token(self) -> tuple[str, int]:
        session = self._get_session()
        params = {
            "grant_type": "client_credential",
            "appid": self._settings.wechat_appid,
            "secret": self._settings.wechat_secret,
        }
        try:
            async with session.get(f"{self._base}/cgi-bin/token", params=params) as resp:
                result = _decode(await resp.read(), resp.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _transport_error("/cgi-bin/token", exc) from exc
        _check(result)
        token, expires_in = result.get("access_token"), result.get("expires_in", 7200)
        if not token:
            raise WeChatAPIError(TRANSPORT_ERRCODE, "token endpoint answered without access_token")
        return str(token), int(expires_in)


def _fields_payload(openid: str, template_id: str, data: dict[str, str]) -> dict[str, Any]:
    """A template message's or 订阅通知's body: {"touser", "template_id", "data": {key: {"value"}}}."""
    return {"touser": openid, "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()}}


def _decode(body: bytes, status: int) -> dict[str, Any]:
    try:
        result = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WeChatAPIError(TRANSPORT_ERRCODE, f"HTTP {status}, not JSON") from None
    if not isinstance(result, dict):
        raise WeChatAPIError(TRANSPORT_ERRCODE, f"HTTP {status}, unexpected JSON")
    return result


def _errcode(result: dict[str, Any]) -> int:
    try:
        return int(result.get("errcode", 0) or 0)
    except (TypeError, ValueError):
        return TRANSPORT_ERRCODE


def _check(result: dict[str, Any]) -> None:
    errcode = _errcode(result)
    if errcode != 0:
        raise WeChatAPIError(errcode, str(result.get("errmsg", "")))


def _transport_error(what: str, exc: BaseException) -> WeChatAPIError:
    # Only the exception type: aiohttp's messages carry the URL, which holds the secret or token.
    log.warning("wechat %s: transport error %s", what, type(exc).__name__)
    return WeChatAPIError(TRANSPORT_ERRCODE, f"network error calling {what}: {type(exc).__name__}")


class HttpMassGateway(HttpWeChatGateway):
    """bot.core.ports.MassGateway: mass messages and user tags, on the same token and session."""

    async def mass_send(self, openids: Sequence[str], text: str, clientmsgid: str) -> str:
        result = await self._call("/cgi-bin/message/mass/send", {
            "touser": list(openids), "msgtype": "text", "text": {"content": text},
            "clientmsgid": clientmsgid, "send_ignore_reprint": 0})
        log.info("wechat mass message %s sent to %d users", clientmsgid, len(openids))
        return str(result.get("msg_id", ""))

    async def mass_send_tag(self, tag_id: int, text: str, clientmsgid: str) -> str:
        result = await self._call("/cgi-bin/message/mass/sendall", {
            "filter": {"is_to_all": False, "tag_id": tag_id}, "msgtype": "text", "text": {"content": text},
            "clientmsgid": clientmsgid, "send_ignore_reprint": 0})
        log.info("wechat mass message %s sent to tag %d", clientmsgid, tag_id)
        return str(result.get("msg_id", ""))

    async def create_tag(self, name: str) -> int:
        result = await self._call("/cgi-bin/tags/create", {"tag": {"name": name}})
        return int((result.get("tag") or {}).get("id", 0))

    async def tag_users(self, tag_id: int, openids: Sequence[str]) -> None:
        await self._call("/cgi-bin/tags/members/batchtagging", {"openid_list": list(openids), "tagid": tag_id})

    async def untag_users(self, tag_id: int, openids: Sequence[str]) -> None:
        await self._call("/cgi-bin/tags/members/batchuntagging", {"openid_list": list(openids), "tagid": tag_id})
