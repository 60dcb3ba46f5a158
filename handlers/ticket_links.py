"""Signed, expiring links to a ticket's read-only page, each valid for one deputy only.

The signature is an HMAC-SHA256 over (ticket number, deputy code, expiry) with a secret from the
settings (ZTC_TICKET_LINK_SECRET, else derived from the account's secrets so links survive a
restart); the page (bot/ticket_page.py) checks it, then that the deputy still may see the ticket."""
from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol
from urllib.parse import urlencode


class LinkSettings(Protocol):
    ticket_link_secret: str
    ticket_link_days: int
    public_base_url: str
    wechat_secret: str
    wechat_token: str
    host: str
    port: int


class Check(StrEnum):
    OK = "ok"
    EXPIRED = "expired"
    FORGED = "forged"


def _key(settings: LinkSettings) -> bytes:
    if settings.ticket_link_secret:
        return settings.ticket_link_secret.encode("utf-8")
    seed = f"{settings.wechat_secret}|{settings.wechat_token}".encode("utf-8")
    return hmac.new(seed, b"zhitongche ticket links", hashlib.sha256).digest()


def signature(settings: LinkSettings, number: int, deputy_code: str, expires: int) -> str:
    message = f"{number}:{deputy_code}:{expires}".encode("utf-8")
    return hmac.new(_key(settings), message, hashlib.sha256).hexdigest()[:32]


def base_url(settings: LinkSettings) -> str:
    return (settings.public_base_url or f"http://{settings.host}:{settings.port}").rstrip("/")


def ticket_link(settings: LinkSettings, number: int, deputy_code: str, at: datetime) -> str:
    expires = int((at + timedelta(days=settings.ticket_link_days)).timestamp())
    query = urlencode({"d": deputy_code, "e": expires, "s": signature(settings, number, deputy_code, expires)})
    return f"{base_url(settings)}/t/{number}?{query}"


def check(settings: LinkSettings, number: int, deputy_code: str, expires: str, given: str, now: datetime) -> Check:
    try:
        expiry = int(expires)
    except ValueError:
        return Check.FORGED
    if not deputy_code or not hmac.compare_digest(signature(settings, number, deputy_code, expiry), given):
        return Check.FORGED
    return Check.EXPIRED if now.timestamp() > expiry else Check.OK
