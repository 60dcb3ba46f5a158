"""Every key-value store key, built in one place so no two features collide. Keys ending in an
openid are masked in logs by storage/kv.py printable_key (their last part)."""
from __future__ import annotations

import zlib

# --- locks (KeyValueStore.lock) ------------------------------------------------------------------
WECHAT_TOKEN_LOCK = "wechat:access_token:lock"


def assign_lock(station_code: str) -> str:
    """One assignment at a time per station across workers (its fewest-open-tickets counts and
    round robin stay exact); two stations never wait on each other."""
    return f"lock:assign:{station_code}"


def push_lock(openid: str) -> str:
    """One delivery pass at a time sends to a user: their window's count is read, then written."""
    return f"lock:push:{openid}"


def user_lock(openid: str) -> str:
    """Everything for one user runs under this lock before any state is loaded."""
    return f"lock:user:{openid}"


# --- leases (KeyValueStore.set_if_absent + extend) ---------------------------------------------
# the one process that runs the scheduled jobs (bot/leader.py); its value names the holder
SCHEDULER_LEADER = "scheduler:leader"


# --- shared values -----------------------------------------------------------------------------
WECHAT_TOKEN = "wechat:access_token"
DEDUPE_PREFIX = "wechat:dedupe:"
# its value while a live process handles the message (a lease the handler renews)
DEDUPE_PENDING = "p"
# when the webhook's claims in this store began (unix seconds; gone after Redis restarted empty)
DEDUPE_EPOCH = "wechat:dedupe-epoch"


def dedupe_seen(dedupe_key: str) -> str:
    """Marked at a message's first claim; outlives the claim's lease (a retry after a crash sees it)."""
    return f"wechat:seen:{dedupe_key}"

# when this key-value store's content began (set once; gone after Redis restarted empty)
STORE_EPOCH = "store:epoch"


def inbound_dedupe(msg_id: str, openid: str, created_at: int, event: str, digest: str) -> str:
    """WeChat retries carry the same MsgId; events have none (sender + CreateTime + event + a
    digest of its key); other messages without one: sender + CreateTime + a digest of the message."""
    if msg_id:
        return f"msg:{msg_id}"
    if event:
        return f"evt:{openid}:{created_at}:{event}:{digest}"
    return f"nomsgid:{openid}:{created_at}:{digest}"


def scene_checked(openid: str) -> str:
    """This user lost no scene state when the store last came back empty (checked once in the
    database; gone with the store's content, so a new loss is checked again)."""
    return f"scene-checked:{openid}"


def round_robin(station_code: str) -> str:
    """The deputy last assigned a ticket at this station."""
    return f"rr:{station_code}"


def no_station(openid: str) -> str:
    """A remembered miss: this citizen has scanned no station's QR code."""
    return f"no-station:{openid}"


# The openids bound to deputies, as BOUND_DEPUTY_BUCKETS JSON lists by a hash of the openid, kept
# a minute: a sender not in its bucket is no deputy, without a database read, and a message reads
# one bucket (~1/64 of 1,200 openids) instead of them all. Whoever binds an account deletes them
# all (handlers/deputies.py bind_deputy).
BOUND_DEPUTY_BUCKETS = 64


def bound_deputies(openid: str) -> str:
    """The bucket of bound deputies' openids that `openid` would be in."""
    return _bound_deputies_bucket(zlib.crc32(openid.encode()) % BOUND_DEPUTY_BUCKETS)


def all_bound_deputies() -> list[str]:
    return [_bound_deputies_bucket(n) for n in range(BOUND_DEPUTY_BUCKETS)]


def _bound_deputies_bucket(n: int) -> str:
    return f"deputies:bound-openids:{n}"


def not_a_deputy(openid: str) -> str:
    """A remembered miss: this account is bound to no deputy."""
    return f"not-deputy:{openid}"


def bind_failures(openid: str) -> str:
    return f"bind-fail:{openid}"


def message_window(openid: str) -> str:
    """WeChat's 48 h customer-service window."""
    return f"window:{openid}"


def burst_window(openid: str) -> str:
    """The 1-minute window after a follow, scan or menu click."""
    return f"cswin:{openid}"


def held_mark(openid: str) -> str:
    """Something is held for this user until they write again."""
    return f"held:{openid}"


def scene(openid: str) -> str:
    """The user's one conversation state (scene, data, started, expires): handlers/chat/state.py."""
    return f"scene:{openid}"


def subscriptions(openid: str) -> str:
    """订阅通知 grants of one user: JSON {subscribe template id: sends left} (handlers/channels.py)."""
    return f"subscriptions:{openid}"


def detail_pages(openid: str) -> str:
    """Which ticket a deputy is paging through (详情 #1003, 下一页) and the page shown last: JSON."""
    return f"detail:{openid}"


# every live session's keyword → its id, cached (handlers/live.py)
LIVE_KEYWORDS = "live:keywords"


def live_feed(session_id: int) -> str:
    """The pub/sub channel of a live session's queue updates (storage/live_feed.py)."""
    return f"live:feed:{session_id}"


def mass_pace() -> str:
    """When the last WeChat mass call started (handlers/pacing.py), across all workers."""
    return "mass-pace:next"


def mass_pace_lock() -> str:
    return "lock:mass-pace"
