"""What the staff commands print: Chinese tables and sentences, never English log lines or raw errors.

WeChat error codes and the outbox's stored reasons are turned into Chinese here (the outbox keeps
WeChat's own words in the database for technicians; `zhitongche -v` logs them)."""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

from rich.table import Table

from bot.core.outbound import OutboxMessage
from bot.core.people import Deputy
from bot.core.receptions import Reception
from bot.core.privacy import mask_openid
from bot.texts import Texts

# The commands staff run: quiet unless -v, so library and INFO lines do not mix into what they read.
STAFF_COMMANDS = frozenset({"import", "deputy", "outbox", "qrcode", "db"})

_ERRCODE = re.compile(r"^(?:WeChat API error )?(-?\d+)\b")
_NO_TEMPLATE = "no template configured"
_NOT_FOLLOWING = "not following the account"  # handlers/delivery.py NOT_FOLLOWING
_FIELDS = "template fields invalid"  # FIELDS_INVALID
_STALE = "stale: "  # STALE, then bot.core.reach.stale_reason's reason
_NETWORK_ERROR = re.compile(r"^(OSError|TimeoutError|Client\w*Error|ServerDisconnectedError|Connection\w*Error)\b")


def configure_logging(verbose: bool, command: str | None) -> None:
    if verbose:
        level = logging.DEBUG
    elif command in STAFF_COMMANDS:
        level = logging.CRITICAL  # the command itself says, in Chinese, what went wrong
    else:
        level = logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        # their routine INFO lines (each migration step, each minute's queue check) drown ours
        for noisy in ("alembic", "apscheduler"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def database_label(url: str) -> str:
    """The database a command used, password hidden: staff see which one when a code is not found."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def wechat_error(errcode: int, texts: Texts) -> str:
    """A WeChat API error code in words staff understand."""
    known: dict[int, str] = texts.raw("wechat_errors")
    return known.get(errcode) or texts.get("wechat_error_code", code=errcode)


def outbox_reason(last_error: str, texts: Texts) -> str:
    """Why a message waits or failed, from the reason delivery stored."""
    if not last_error:
        return ""
    if _NO_TEMPLATE in last_error:
        return texts.get("outbox_reason_no_template")
    if last_error == _NOT_FOLLOWING:
        return texts.get("outbox_reason_not_following")
    if last_error.startswith(_FIELDS):
        return texts.get("outbox_reason_fields")
    if last_error.startswith(_STALE) and f"outbox_reason_stale_{last_error[len(_STALE):]}" in texts:
        return texts.get(f"outbox_reason_stale_{last_error[len(_STALE):]}")
    if match := _ERRCODE.match(last_error):
        return wechat_error(int(match[1]), texts)
    if _NETWORK_ERROR.match(last_error):
        return texts.get("outbox_reason_network")
    return texts.get("outbox_reason_other", reason=last_error)


def recipient(openid: str, deputies: dict[str, Deputy], texts: Texts) -> str:
    """A deputy by name and code; anybody else is a citizen, shown masked."""
    deputy = deputies.get(openid)
    if deputy is not None:
        return texts.get("outbox_to_deputy", name=deputy.name, code=deputy.code)
    return texts.get("outbox_to_citizen", openid=mask_openid(openid))


def outbox_table(messages: Iterable[OutboxMessage], deputies: Iterable[Deputy], texts: Texts) -> Table:
    by_openid = {d.openid: d for d in deputies if d.openid}
    table = _table(texts, "cli_outbox_id", "cli_outbox_to", "cli_outbox_ticket", "cli_outbox_channel",
                   "cli_outbox_status", "cli_outbox_reason", "cli_outbox_attempts", "cli_outbox_text")
    for m in messages:
        channel_key = f"outbox_channel_{m.channel}"
        channel = texts.get(channel_key) if m.channel and channel_key in texts else m.channel or "—"
        table.add_row(str(m.id), recipient(m.recipient_openid, by_openid, texts),
                      f"#{m.ticket_number}" if m.ticket_number else "—", channel,
                      texts.get(f"outbox_status_{m.status}"), outbox_reason(m.last_error, texts) or "—",
                      str(m.attempts), " ".join(m.text.split())[:40])
    return table


def receptions_table(receptions: Iterable[Reception], deputies: Iterable[Deputy], texts: Texts) -> Table:
    names = {d.code: d.name for d in deputies}
    table = _table(texts, "cli_reception_id", "cli_reception_station", "cli_reception_when",
                   "cli_reception_deputies", "cli_reception_topic", "cli_reception_place", "cli_reception_status")
    for r in receptions:
        table.add_row(str(r.id), r.station_code, f"{r.day:%Y-%m-%d} {r.start:%H:%M}-{r.end:%H:%M}",
                      "、".join(names.get(c, c) for c in r.deputy_codes), r.topic, r.place,
                      texts.get(f"cli_reception_status_{r.status}"))
    return table


def import_problems_table(errors: Sequence[tuple[int, str]], texts: Texts) -> Table:
    table = _table(texts, "cli_import_line", "cli_import_problem")
    for line, message in errors:
        table.add_row(str(line) if line else "—", message)  # 0: the file as a whole
    return table


def _table(texts: Texts, *header_keys: str) -> Table:
    table = Table()
    for key in header_keys:
        table.add_column(texts.get(key), overflow="fold")  # long Chinese lines wrap, never end in "…"
    return table
