"""Configuration: ZTC_* environment variables, also readable from config/zhitongche.env."""
from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ZTC_",
        env_file=(CONFIG_DIR / "zhitongche.env", ".env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = f"sqlite+aiosqlite:///{PROJECT_ROOT / 'var' / 'zhitongche.db'}"
    redis_url: str = ""  # empty: in-process stores, single process only
    redis_prefix: str = "ztc:"

    wechat_appid: str = "wx0000000000demo"
    wechat_secret: str = "demo-secret"
    wechat_token: str = "zhitongche"
    wechat_aes_key: str = ""  # EncodingAESKey: when set, safe mode
    wechat_api_base: str = "https://api.weixin.qq.com"
    wechat_timeout: float = 10.0  # seconds a WeChat API call may take before it counts as failed
    # a signed request whose timestamp is further than this from our clock is refused (403)
    wechat_timestamp_window: int = 300

    host: str = "127.0.0.1"
    port: int = 8080

    reply_deadline: float = 4.0  # seconds before the passive reply falls back to `success`
    max_body_bytes: int = 256 * 1024
    form_ttl: int = 30 * 60  # an abandoned report form expires
    dedupe_ttl: int = 600
    # A message being handled is marked "pending" for reply_deadline + this, renewed while its
    # handler runs: a retry after the owner died is handled again instead of answered `success`.
    dedupe_pending_grace: float = 2.0
    # a message past the reply deadline is kept in the database (WeChat sends it no more): when its
    # handler has not pushed a reply this many seconds later (it failed, its process died), the
    # replay job handles it again; more tries wait longer
    late_retry_after: float = 30.0
    user_lock_wait: float = 10.0  # seconds a message waits for the same user's previous one

    nlu_backend: str = "embedded"  # embedded | rasa
    rasa_url: str = "http://127.0.0.1:5005"
    rasa_timeout: float = 2.0

    # template messages used outside the 48 h customer-service window ("" = not configured)
    template_id_assignment: str = ""  # to a deputy: a ticket was assigned to you
    template_id_status: str = ""  # to a citizen: your ticket changed status
    # 订阅通知 (message/subscribe/bizsend) templates, used outside the window when no template id is set
    # and the user has a subscription left ("" = not configured)
    subscribe_id_assignment: str = ""
    subscribe_id_status: str = ""
    # to a follower: a reception's announcement, and news that it changed or was cancelled
    # (fields: handlers/reception_notices.py RECEPTION_FIELDS); its followers with a send of it left
    # get announcements this way, no mass message used
    subscribe_id_reception: str = ""
    # to a citizen who asked in a 云直播: the host's answer / a hidden question / the follow-up ticket
    # (fields thing1 = session title, thing2 = question, thing3 = what happened, time4 = when)
    template_id_live: str = ""
    subscribe_id_live: str = ""
    # the deputy's read-only ticket page (bot/ticket_page.py): links signed with this ("" = derived
    # from the WeChat secret and token), valid this many days; the address deputies open them at
    ticket_link_secret: str = ""
    ticket_link_days: int = 7
    public_base_url: str = ""  # e.g. https://ztc.example.gov.cn ("" = http://host:port)
    subscribe_long_term: bool = False  # long-term subscriptions (public-service accounts): an accept has no count

    # broadcasts and reception reminders (handlers/broadcasts.py, handlers/receptions.py)
    broadcast_batch: int = 10_000  # openids per message/mass/send call (WeChat's maximum)
    # mass calls a minute, all workers together: WeChat refuses more than 60 a minute (and 100 a day)
    broadcast_calls_per_minute: float = 30.0
    broadcast_claim_seconds: float = 120.0  # a sender's claim on a mass call; a dead sender's expires
    reminder_eve_time: str = "18:00"  # deputies are reminded of a reception the day before at this time
    reminder_morning_time: str = "08:00"  # followers who asked are reminded on the morning of the day

    poster_font: str = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"  # Debian fonts-noto-cjk
    # staff console: Fernet key for the session cookie ("" = a new key per start: everyone signs in again)
    console_secret_key: str = ""
    console_cookie_secure: bool = False  # set when served over HTTPS
    console_late_hours: int = 24  # "not accepted after N hours"
    console_resolve_days: int = 15  # 按时办结: resolved within this many days

    def template_id(self, key: str) -> str:
        return str(getattr(self, f"template_id_{key}", "") or "")

    def subscribe_id(self, key: str) -> str:
        return str(getattr(self, f"subscribe_id_{key}", "") or "")
