"""Personal data rules that every layer shares."""
from __future__ import annotations


def mask_openid(openid: str | None) -> str:
    """Openids never go to logs in full."""
    if not openid:
        return "-"
    return openid[:4] + "…" + openid[-2:] if len(openid) > 8 else "…"
