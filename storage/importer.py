"""Import stations, deputies, the duty roster and reception days from CSV or XLSX files.

CSV may be UTF-8 (with or without BOM) or GB18030/GBK, which Excel on Chinese Windows saves. Headers
may be English (`code,name,...`) or Chinese (`编号,名称,...`); the accepted Chinese names are data in
config/texts/storage.yaml (`import_headers`), and messages name a column as the file writes it.
Every row is checked on its own: good rows are imported even when others are bad, and each bad
value is reported with its line number, column and value. Rows are upserted by their key, so
importing the same file twice changes nothing (the report's updated/unchanged counts show it)."""
from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from bot.core.clock import SystemClock
from bot.core.people import DEPUTY_LEVELS, Deputy, DutyShift, Station, StationKind
from bot.core.ports import UnitOfWorkFactory
from bot.core.receptions import MAX_PLACE, MAX_TOPIC, Reception, ReceptionInvalid
from bot.core.tickets import CATEGORIES
from bot.texts import Texts, default_texts
from handlers.receptions import store_reception
from storage.import_headers import COLUMNS, chinese_header, read_header
from storage.spreadsheet import UnknownEncoding, read_table

KINDS = ("stations", "deputies", "duty", "receptions")
KEY_COLUMNS = {"stations": ("code",), "deputies": ("code",), "duty": ("station_code", "deputy_code", "day", "start"),
               "receptions": ("station_code", "date", "start")}

END_OF_DAY = time.max  # "24:00": DutyShift.covers compares start <= t < end
_CODE = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}(-\d{1,6})?$")
_TIME = re.compile(r"^(\d{1,2})[:：](\d{2})$")
_LIST_SEPARATORS = re.compile(r"[;；、]")
_KIND_ALIASES = {"代表之家": "家", "代表联络站": "站", "联络站": "站", "代表联系点": "点", "联系点": "点"}
_WEEKDAYS = {name: i for i, names in enumerate(
    (("周一", "星期一"), ("周二", "星期二"), ("周三", "星期三"), ("周四", "星期四"),
     ("周五", "星期五"), ("周六", "星期六"), ("周日", "周天", "星期日", "星期天")), start=1) for name in names}


@dataclass
class ImportReport:
    kind: str
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    rows: list[ImportedRow] = field(default_factory=list)  # the good rows, in file order

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def unreadable(self) -> bool:
        """The file itself could not be read (no rows were looked at)."""
        return bool(self.errors) and self.errors[0][0] == 0


@dataclass(frozen=True)
class ImportedRow:
    line: int
    outcome: str  # created | updated | unchanged
    item: Any  # the Station, Deputy, DutyShift or Reception


# an extra rule of the caller (e.g. the console's scope): the Chinese reason a good row is refused, or None
RowCheck = Callable[[Any], str | None]


class _RowError(Exception):
    pass


# --- checking values -------------------------------------------------------------------------------
class _Row:
    """One data row by column name; each check records the Chinese message naming the column as the
    file's header writes it."""

    def __init__(self, cells: dict[str, str], labels: dict[str, str], texts: Texts, errors: list[str]) -> None:
        self.cells = cells
        self.labels = labels
        self.texts = texts
        self.errors = errors

    def bad(self, column: str, reason_key: str, **params: object) -> None:
        reason = self.texts.get(reason_key, **params)
        self.errors.append(self.texts.get("import_bad_value", column=self.labels[column],
                                          value=self.cells[column], reason=reason))

    def missing(self, column: str) -> None:
        self.errors.append(self.texts.get("import_required", column=self.labels[column]))

    def required(self, column: str, max_len: int = 200) -> str:
        value = self.cells[column]
        if not value:
            self.missing(column)
        elif len(value) > max_len:
            self.bad(column, "import_reason_too_long", max=max_len)
        return value

    def code(self, column: str) -> str:
        value = self.cells[column]
        if not value:
            self.missing(column)
        elif not _CODE.match(value):
            self.bad(column, "import_reason_code")
        return value

    def optional(self, column: str, max_len: int = 500) -> str:
        value = self.cells[column]
        if len(value) > max_len:
            self.bad(column, "import_reason_too_long", max=max_len)
        return value

    def items(self, column: str) -> tuple[str, ...]:
        return tuple(item.strip() for item in _LIST_SEPARATORS.split(self.cells[column]) if item.strip())


def _parse_time(value: str, *, allow_end_of_day: bool) -> time | None:
    match = _TIME.match(value)
    if not match:
        return None
    hour, minute = int(match[1]), int(match[2])
    if allow_end_of_day and (hour, minute) == (24, 0):
        return END_OF_DAY
    if hour > 23 or minute > 59:
        return None
    return time(hour, minute)


def _parse_day(value: str) -> date | int | None:
    if value in _WEEKDAYS:
        return _WEEKDAYS[value]
    if value.isdigit() and len(value) == 1:
        return int(value) if 1 <= int(value) <= 7 else None
    try:
        return date.fromisoformat(value.replace("/", "-"))
    except ValueError:
        return None


def _normalise_phone(value: str) -> str | None:
    compact = re.sub(r"[\s()（）]", "", value)
    mobile = re.sub(r"^(\+?86)", "", compact).replace("-", "")
    if _MOBILE.match(mobile):
        return mobile
    if _LANDLINE.match(compact):
        return compact
    return None


def _station(row: _Row, known: dict[str, set[str]]) -> Station:
    kind_text = _KIND_ALIASES.get(row.cells["kind"], row.cells["kind"])
    kind = None
    if not row.cells["kind"]:
        row.missing("kind")
    elif kind_text not in {k.value for k in StationKind}:
        row.bad("kind", "import_reason_kind")
    else:
        kind = StationKind(kind_text)
    specialties = row.items("specialties")
    unknown = [s for s in specialties if s not in CATEGORIES]
    if unknown:
        row.bad("specialties", "import_reason_category", categories="、".join(CATEGORIES))
    station = Station(
        code=row.code("code"),
        name=row.required("name"),
        kind=kind or StationKind.STATION,
        town=row.required("town", 100),
        address=row.optional("address"),
        specialties=specialties,
        places=row.items("places"),
    )
    return station


def _deputy(row: _Row, known: dict[str, set[str]]) -> Deputy:
    code = row.code("code")
    name = row.required("name", 100)
    level = row.cells["level"]
    if not level:
        row.missing("level")
    elif level not in DEPUTY_LEVELS:
        row.bad("level", "import_reason_level")
    station_code = row.code("station_code")
    if station_code and station_code not in known["stations"]:
        row.bad("station_code", "import_reason_station_missing")
    phone = ""
    if row.cells["phone"]:
        normalised = _normalise_phone(row.cells["phone"])
        if normalised is None:
            row.bad("phone", "import_reason_phone")
        else:
            phone = normalised
    return Deputy(code=code, name=name, level=level, station_code=station_code, phone=phone)


def _times(row: _Row) -> tuple[time | None, time | None]:
    times: dict[str, time | None] = {}
    for column in ("start", "end"):
        parsed = None
        if not row.cells[column]:
            row.missing(column)
        elif (parsed := _parse_time(row.cells[column], allow_end_of_day=column == "end")) is None:
            row.bad(column, "import_reason_time")
        times[column] = parsed
    start, end = times["start"], times["end"]
    if start is not None and end is not None and not start < end:
        row.bad("end", "import_reason_time_order", start_column=row.labels["start"], start=row.cells["start"])
    return start, end


def _reception(row: _Row, known: dict[str, set[str]]) -> Reception:
    """The cells of one reception; its rules (past date, clashes) are checked when it is stored."""
    station_code = row.code("station_code")
    if station_code and station_code not in known["stations"]:
        row.bad("station_code", "import_reason_station_missing")
    deputy_codes = row.items("deputy_codes")
    if not deputy_codes:
        row.missing("deputy_codes")
    elif any(code not in known["deputies"] for code in deputy_codes):
        row.bad("deputy_codes", "import_reason_deputy_missing")
    day = None
    if not row.cells["date"]:
        row.missing("date")
    elif not isinstance(day := _parse_day(row.cells["date"]), date):
        row.bad("date", "import_reason_date")
    start, end = _times(row)
    capacity = None
    if row.cells["capacity"]:
        if row.cells["capacity"].isdigit() and int(row.cells["capacity"]) > 0:
            capacity = int(row.cells["capacity"])
        else:
            row.bad("capacity", "import_reason_capacity")
    return Reception(station_code, deputy_codes, day if isinstance(day, date) else date.min, start or time(),
                     end or END_OF_DAY, row.required("topic", MAX_TOPIC), row.required("place", MAX_PLACE),
                     live_url=row.optional("live_url"), capacity=capacity)


def _shift(row: _Row, known: dict[str, set[str]]) -> DutyShift:
    station_code = row.code("station_code")
    if station_code and station_code not in known["stations"]:
        row.bad("station_code", "import_reason_station_missing")
    deputy_code = row.code("deputy_code")
    if deputy_code and deputy_code not in known["deputies"]:
        row.bad("deputy_code", "import_reason_deputy_missing")
    day = None
    if not row.cells["day"]:
        row.missing("day")
    elif (day := _parse_day(row.cells["day"])) is None:
        row.bad("day", "import_reason_day")
    start, end = _times(row)
    return DutyShift(station_code, deputy_code, day if day is not None else 1, start or time(), end or END_OF_DAY)


_PARSERS: dict[str, Callable[[_Row, dict[str, set[str]]], Any]] = {
    "stations": _station,
    "deputies": _deputy,
    "duty": _shift,
    "receptions": _reception,
}


def _key(kind: str, item: Any) -> Any:
    if kind == "receptions":
        return item.key
    if kind == "duty":
        day = item.day.isoformat() if isinstance(item.day, date) else f"w{item.day}"
        return (item.station_code, item.deputy_code, day, item.start)
    return item.code


# --- the import ------------------------------------------------------------------------------------
def check_record(kind: str, cells: dict[str, str], known: dict[str, set[str]], texts: Texts | None = None
                 ) -> tuple[Any, list[str]]:
    """One record checked by the import's rules (a console edit form uses them): the item and the
    Chinese reasons it is bad (none: good). `cells` by column name; `known` the station and deputy codes."""
    texts = texts or default_texts()
    labels = {c: texts.raw("import_headers")[kind][c][0] for c in COLUMNS[kind]}
    errors: list[str] = []
    item = _PARSERS[kind](_Row({c: cells.get(c, "").strip() for c in COLUMNS[kind]}, labels, texts, errors), known)
    return item, errors


async def import_file(uow_factory: UnitOfWorkFactory, kind: str, path: Path, texts: Texts | None = None,
                      now: datetime | None = None, *, dry_run: bool = False,
                      check: RowCheck | None = None) -> ImportReport:
    """Import `path` (CSV or XLSX) as `kind` (stations | deputies | duty | receptions) in one
    transaction. `now` (default: the system clock) is when a reception date counts as past.
    `dry_run`: the same checks and counts, and nothing stored (the console's preview). `check`: a
    further rule of the caller; a row it refuses is reported like any bad row."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    texts = texts or default_texts()
    report = ImportReport(kind)
    path = Path(path)

    try:
        table = await asyncio.to_thread(read_table, path)
    except ValueError as exc:
        if path.suffix.lower() not in (".csv", ".xlsx", ".xlsm"):
            report.errors.append((0, texts.get("import_unsupported_format", suffix=path.suffix or path.name)))
        else:
            report.errors.append((0, texts.get("import_unreadable", reason=str(exc))))
        return report
    except UnknownEncoding:
        report.errors.append((0, texts.get("import_unknown_encoding")))
        return report
    except Exception as exc:  # OSError, UnicodeDecodeError, csv.Error, and openpyxl's zip/xml errors
        report.errors.append((0, texts.get("import_unreadable", reason=f"{type(exc).__name__}: {exc}")))
        return report

    table = [(line, cells) for line, cells in table if any(cells)]  # blank lines are no rows
    if not table:
        report.errors.append((1, texts.get("import_empty_file", expected=chinese_header(kind, texts))))
        return report
    header_line, header_cells = table[0]
    header = read_header(header_cells, kind, texts)
    if header.problem:
        report.errors.append((header_line, header.problem))
        return report

    async with uow_factory() as uow:
        known = {
            "stations": {s.code for s in await uow.stations.list()},
            "deputies": {d.code for d in await uow.deputies.list()},
        }
        existing_shifts = {_key("duty", s) for s in await uow.duty.list()} if kind == "duty" else set()
        seen: dict[Any, int] = {}
        for line, cells in table[1:]:
            report.rows_read += 1
            errors: list[str] = []
            item = _PARSERS[kind](_Row(header.values(cells), header.labels, texts, errors), known)
            key = _key(kind, item)
            if not errors and key in seen:
                errors.append(texts.get("import_duplicate_row", line=seen[key],
                                        columns=",".join(header.labels[c] for c in KEY_COLUMNS[kind])))
            if not errors and check is not None and (refused := check(item)):
                errors.append(refused)
            if errors:
                report.errors.extend((line, e) for e in errors)
                continue
            if kind == "receptions":
                try:
                    _, outcome = await store_reception(uow, item, now or SystemClock().now(), texts)
                except ReceptionInvalid as invalid:
                    report.errors.extend((line, texts.get(e.key, **e.params)) for e in invalid.errors)
                    continue
                seen[key] = line
                report.created += outcome == "created"
                report.updated += outcome == "updated"
                report.unchanged += outcome == "unchanged"
                report.rows.append(ImportedRow(line, outcome, item))
                continue
            seen[key] = line
            if kind == "stations":
                existed = item.code in known["stations"]
                changed = await uow.stations.upsert(item)
                known["stations"].add(item.code)
            elif kind == "deputies":
                existed = item.code in known["deputies"]
                changed = await uow.deputies.upsert(item)
            else:
                existed = key in existing_shifts
                changed = await uow.duty.upsert(item)
            outcome = "unchanged" if existed and not changed else "updated" if existed else "created"
            setattr(report, outcome, getattr(report, outcome) + 1)
            report.rows.append(ImportedRow(line, outcome, item))
        if not dry_run:
            await uow.commit()  # a dry run leaves without commit: everything rolls back
    return report
