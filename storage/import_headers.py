"""The header row of an import file: English column names or their Chinese synonyms
(config/texts/storage.yaml `import_headers`), matched loosely, with one clear message when wrong."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from bot.texts import Texts

COLUMNS: dict[str, tuple[str, ...]] = {
    "stations": ("code", "name", "kind", "town", "address", "specialties", "places"),
    "deputies": ("code", "name", "level", "station_code", "phone"),
    "duty": ("station_code", "deputy_code", "day", "start", "end"),
    "receptions": ("station_code", "deputy_codes", "date", "start", "end", "topic", "place", "live_url", "capacity"),
}
OPTIONAL_COLUMNS = frozenset({"address", "specialties", "places", "phone", "live_url", "capacity"})  # may be left out of the header
_HEADER_NOISE = re.compile(r"[\s()\[\]（）【】/、*:：_\-]")
_CJK = re.compile(r"[\u4e00-\u9fff]")


def header_key(name: str) -> str:
    """How a header cell is matched: width folded, case, spaces, brackets and marks ignored."""
    return _HEADER_NOISE.sub("", unicodedata.normalize("NFKC", name).lower())


def chinese_header(kind: str, texts: Texts) -> str:
    """The documented Chinese header of `kind`, e.g. 编号,姓名,级别,站点编号,手机."""
    names = texts.raw("import_headers")[kind]
    return ",".join(names[column][0] for column in COLUMNS[kind])


@dataclass
class _Header:
    positions: dict[str, int]  # column → cell index
    labels: dict[str, str]  # every column → its name as the file writes it (or our default name)
    problem: str = ""

    def values(self, cells: Sequence[str]) -> dict[str, str]:
        """A data row by column; a column the header leaves out, or a short row's, reads as empty."""
        return {c: cells[i] if (i := self.positions.get(c, len(cells))) < len(cells) else "" for c in self.labels}


def read_header(header: Sequence[str], kind: str, texts: Texts) -> _Header:
    """Map the header cells to the columns of `kind`; English names and Chinese synonyms both count."""
    chinese_names: dict[str, list[str]] = texts.raw("import_headers")[kind]
    names = {header_key(column): column for column in COLUMNS[kind]}
    names |= {header_key(synonym): column for column, synonyms in chinese_names.items() for synonym in synonyms}
    cells = list(header)
    while cells and not cells[-1].strip():  # trailing empty cells of a spreadsheet
        cells.pop()
    chinese = any(_CJK.search(cell) for cell in cells)
    labels = {column: chinese_names[column][0] if chinese else column for column in COLUMNS[kind]}
    positions: dict[str, int] = {}
    unknown, duplicated = [], []
    for index, cell in enumerate(cells):
        column = names.get(header_key(cell))
        if column is None:
            unknown.append(cell.strip() or texts.get("import_header_blank"))
        elif column in positions:
            duplicated.append(cell.strip())
        else:
            positions[column] = index
            labels[column] = cell.strip()
    missing = [labels[c] for c in COLUMNS[kind] if c not in positions and c not in OPTIONAL_COLUMNS]
    problems = [texts.get(key, columns="」「".join(columns)) for key, columns in (
        ("import_header_unknown", unknown), ("import_header_missing", missing),
        ("import_header_duplicate", duplicated)) if columns]
    if not problems:
        return _Header(positions, labels)
    in_chinese, in_english = chinese_header(kind, texts), ",".join(COLUMNS[kind])
    expected, other = (in_chinese, in_english) if chinese else (in_english, in_chinese)
    return _Header(positions, labels, texts.get("import_header_problem", problems="；".join(problems),
                                                expected=expected, other=other))
