"""Training data: Rasa 3.x NLU YAML under nlu/data/, the place table generated from the station
data, and the shared real messages (../shared/data, evaluation and category training)."""
from __future__ import annotations

import csv
import hashlib
import json
import importlib.util
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

NLU_DIR = Path(__file__).resolve().parent
REPO_ROOT = NLU_DIR.parent
DATA_DIR = NLU_DIR / "data"
CATEGORIES_FILE = NLU_DIR / "categories" / "categories.yml"  # a separate Rasa model, not in data/
PLACES_FILE = DATA_DIR / "places.yml"
TEST_INTENTS_FILE = NLU_DIR / "test_intents.yml"
TEST_CATEGORIES_FILE = NLU_DIR / "test_categories.yml"  # short chat-style reports, held out
STATIONS_CSV = REPO_ROOT / "config" / "demo" / "stations.csv"
JIEBA_DICT_DIR = NLU_DIR / "rasa" / "jieba"

# The shared real data the embedded model is trained from (paths under shared/data). Without it the
# shipped model (nlu/model/) is used as is: it cannot be rebuilt faithfully from the YAML alone.
SHARED_TRAINING_FILES = ("tipdm2020/messages_7class.csv", "tipdm2020/label_taxonomy.csv")
FEATURES_FILE = NLU_DIR / "text.py"  # the featurisation: a model only fits the code that made its features

# `[text](entity)` or `[text]{"entity": "x", "value": "y"}` inside a Rasa example
_ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\](?:\((?P<entity>[^)]+)\)|(?P<json>\{[^}]*\}))")


def shared_data_dir() -> Path:
    """../shared/data beside the repo (CI copies shared/ next to its clone); ZTC_SHARED_DATA overrides."""
    env = os.environ.get("ZTC_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def tipdm_csv() -> Path:
    return shared_data_dir() / SHARED_TRAINING_FILES[0]


def taxonomy_csv() -> Path:
    return shared_data_dir() / SHARED_TRAINING_FILES[1]


def smp2017_tsv() -> Path:
    return shared_data_dir() / "smp2017" / "utterances_31domains.tsv"


@dataclass(frozen=True)
class Example:
    text: str  # annotations removed
    label: str
    entities: tuple[tuple[str, str, int, int], ...] = ()  # (entity, surface text, start, end)


def strip_annotations(raw: str) -> tuple[str, tuple[tuple[str, str, int, int], ...]]:
    out: list[str] = []
    entities: list[tuple[str, str, int, int]] = []
    pos = 0
    length = 0
    for m in _ANNOTATION.finditer(raw):
        out.append(raw[pos : m.start()])
        length += m.start() - pos
        surface = m.group("text")
        entity = m.group("entity")
        if entity is None:
            entity = str(yaml.safe_load(m.group("json")).get("entity", ""))
        entities.append((entity, surface, length, length + len(surface)))
        out.append(surface)
        length += len(surface)
        pos = m.end()
    out.append(raw[pos:])
    return "".join(out), tuple(entities)


def load_rasa_examples(path: Path) -> list[Example]:
    """The intent examples of a Rasa NLU YAML file (regexes, lookups and synonyms are skipped)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    examples: list[Example] = []
    for block in data.get("nlu", []):
        if "intent" not in block:
            continue
        for line in str(block.get("examples", "")).splitlines():
            line = line.strip()
            if not line.startswith("- "):
                continue
            text, entities = strip_annotations(line[2:].strip())
            examples.append(Example(text, str(block["intent"]), entities))
    return examples


@dataclass
class PlaceTable:
    """Surface form → canonical place name, as written in the station data's town/places columns."""

    canonical: set[str] = field(default_factory=set)
    synonyms: dict[str, str] = field(default_factory=dict)  # surface → canonical (canonical included)

    def surfaces(self) -> dict[str, str]:
        table = {name: name for name in self.canonical}
        table.update(self.synonyms)
        return table


def load_places(path: Path = PLACES_FILE) -> PlaceTable:
    table = PlaceTable()
    if not path.exists():
        return table
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for block in data.get("nlu", []):
        if block.get("lookup") == "place":
            for line in str(block["examples"]).splitlines():
                if line.strip().startswith("- "):
                    table.canonical.add(line.strip()[2:].strip())
        elif "synonym" in block:
            for line in str(block["examples"]).splitlines():
                if line.strip().startswith("- "):
                    table.synonyms[line.strip()[2:].strip()] = str(block["synonym"])
    return table


# Short names people use for the district's towns and streets, beyond the obvious suffix drop.
_TOWN_ALIASES = {
    "开发区": ["吴江经济技术开发区", "吴江开发区", "经济技术开发区", "经开区", "吴江经开区"],
    "东太湖度假区": ["东太湖", "东太湖旅游度假区", "太湖度假区"],
    "太湖新城": ["吴江太湖新城"],
}
_DEFAULT_TOWNS = ["松陵街道", "江陵街道", "八坼街道", "横扇街道", "同里镇", "平望镇", "黎里镇", "盛泽镇",
                  "七都镇", "震泽镇", "桃源镇", "开发区", "太湖新城", "东太湖度假区"]


def _stem_is_safe(stem: str, towns_short: set[str], frequencies: dict[str, int]) -> bool:
    """A village/community stem (南厍 for 南厍村) stands alone only when it is not an everyday word."""
    if len(stem) < 2 or stem in towns_short:
        return False
    return frequencies.get(stem, 0) < 100  # 中心, 同心, 光明 … are words first, place names second


def word_frequencies(words: set[str]) -> dict[str, int]:
    """The frequencies of `words` in jieba's dictionary, read straight from its file: building
    jieba's prefix dictionary costs seconds of CPU, and the serving bot learns places too."""
    if not words:
        return {}
    spec = importlib.util.find_spec("jieba")  # its dictionary file, without importing jieba
    assert spec is not None and spec.origin is not None, "jieba is a dependency of the project"
    found: dict[str, int] = {}
    with (Path(spec.origin).parent / "dict.txt").open(encoding="utf-8") as fh:
        for line in fh:
            word, _, rest = line.partition(" ")
            if word in words:
                found[word] = int(rest.split(" ", 1)[0])
    return found


def read_station_csv(stations_csv: Path | None = STATIONS_CSV) -> list[tuple[str, tuple[str, ...]]]:
    """(town, places) of each row of a station CSV in the English-header form of config/demo/."""
    rows: list[tuple[str, tuple[str, ...]]] = []
    if stations_csv is not None and stations_csv.exists():
        with stations_csv.open(encoding="utf-8-sig", newline="") as fh:
            for row in csv.DictReader(fh):
                places = tuple(p.strip() for p in (row.get("places") or "").split(";") if p.strip())
                rows.append(((row.get("town") or "").strip(), places))
    return rows


def build_place_table(stations_csv: Path | None = STATIONS_CSV) -> PlaceTable:
    return place_table(read_station_csv(stations_csv))


def place_table(stations: Iterable[tuple[str, Sequence[str]]], *, default_towns: bool = True) -> PlaceTable:
    """The place table of stations given as (town, places served): towns with their short forms
    (湖塘 / 湖塘街道 for 湖塘镇), villages/communities with their stems where safe (南厍 for 南厍村).
    No towns at all: the district's own towns (`default_towns`)."""
    towns: list[str] = []
    places: list[str] = []
    for town, served in stations:
        town = town.strip()
        if town and town not in towns:
            towns.append(town)
        for place in served:
            place = place.strip()
            if place and place not in places:
                places.append(place)
    if not towns and default_towns:
        towns = list(_DEFAULT_TOWNS)
    table = PlaceTable()
    short_towns: set[str] = set()
    for town in towns:
        table.canonical.add(town)
        for suffix in ("街道", "镇"):
            if town.endswith(suffix) and len(town) - len(suffix) >= 2:
                short = town[: -len(suffix)]
                short_towns.add(short)
                table.synonyms[short] = town
                if suffix == "镇":
                    table.synonyms[short + "街道"] = town
                else:
                    table.synonyms[short + "镇"] = town
        for alias in _TOWN_ALIASES.get(town, []):
            table.synonyms[alias] = town
    stems = {place[: -len(suffix)] for place in places for suffix in ("社区", "村") if place.endswith(suffix)}
    frequencies = word_frequencies({stem for stem in stems if len(stem) >= 2})
    for place in places:
        table.canonical.add(place)
        for suffix in ("社区", "村"):
            if place.endswith(suffix):
                stem = place[: -len(suffix)]
                if _stem_is_safe(stem, short_towns, frequencies) and stem not in table.canonical:
                    table.synonyms.setdefault(stem, place)
                    if not stem.endswith("村"):
                        alt = stem + ("村" if suffix == "社区" else "社区")
                        table.synonyms.setdefault(alt, place)
    # never let a synonym shadow a canonical name
    for name in table.canonical:
        table.synonyms.pop(name, None)
    return table


def write_place_files(table: PlaceTable, places_yml: Path = PLACES_FILE, jieba_dir: Path = JIEBA_DICT_DIR,
                      source: str = "`zhitongche nlu train` from config/demo/stations.csv") -> None:
    """nlu/data/places.yml (Rasa lookup + synonyms) and the jieba user dictionary for Rasa."""
    by_canonical: dict[str, list[str]] = {}
    for surface, canonical in sorted(table.synonyms.items()):
        by_canonical.setdefault(canonical, []).append(surface)
    lines = [
        f"# GENERATED by {source}: do not edit by hand.",
        "# Entity values are the canonical names of the station data (town column, places column).",
        'version: "3.1"',
        "",
        "nlu:",
        "- lookup: place",
        "  examples: |",
    ]
    lines += [f"    - {name}" for name in sorted(table.canonical)]
    for canonical in sorted(by_canonical):
        lines += ["", f"- synonym: {canonical}", "  examples: |"]
        lines += [f"    - {s}" for s in by_canonical[canonical]]
    places_yml.write_text("\n".join(lines) + "\n", encoding="utf-8")
    jieba_dir.mkdir(parents=True, exist_ok=True)
    words = sorted(set(table.canonical) | set(table.synonyms))
    (jieba_dir / "places.txt").write_text("".join(f"{w} 2000 ns\n" for w in words), encoding="utf-8")


def read_tipdm(split: str | None = None, path: Path | None = None) -> list[tuple[str, str]]:
    """(text, category) rows of the real message-board data; [] when the shared data is absent."""
    path = path or tipdm_csv()
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as fh:
        return [(r["text"], r["一级标签"]) for r in csv.DictReader(fh) if split is None or r["split"] == split]


def read_taxonomy(categories: Iterable[str], path: Path | None = None) -> list[tuple[str, str]]:
    """The message board's own label taxonomy as short (text, category) examples: second and third
    level names of each top-level class we use, e.g. ("出租车管理网约车问题", "交通运输"); "其他"
    levels are left out. [] when the shared data is absent."""
    path = path or taxonomy_csv()
    if not path.exists():
        return []
    wanted = set(categories)
    rows: list[tuple[str, str]] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            top = r["一级分类"]
            text = "".join(x for x in (r["二级分类"], r["三级分类"]) if x != "其他")
            if top in wanted and text:
                rows.append((text, top))
    return rows


def read_smp2017(path: Path | None = None) -> list[tuple[str, str]]:
    path = path or smp2017_tsv()
    if not path.exists():
        return []
    rows: list[tuple[str, str]] = []
    with path.open(encoding="utf-8") as fh:
        next(fh, None)
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 2 and parts[0]:
                rows.append((parts[0], parts[1]))
    return rows


def intent_files() -> list[Path]:
    """The Rasa intent model's data: every nlu/data/*.yml (places.yml holds no intents)."""
    return sorted(DATA_DIR.glob("*.yml"))


def load_intent_examples() -> list[Example]:
    return [e for path in intent_files() for e in load_rasa_examples(path)]


def training_sources() -> dict[str, str | None]:
    """Everything the embedded model is built from, each with the sha256 of its bytes (None: absent):
    repo files by repo-relative path, the shared real data by its path under shared/data."""
    sources: dict[str, str | None] = {}
    for path in [*intent_files(), CATEGORIES_FILE, PLACES_FILE, FEATURES_FILE]:
        sources[path.relative_to(REPO_ROOT).as_posix()] = _sha256(path)
    for name in SHARED_TRAINING_FILES:
        sources[name] = _sha256(shared_data_dir() / name)
    return sources


def sources_hash(sources: dict[str, str | None]) -> str:
    return hashlib.sha256(json.dumps(sources, sort_keys=True).encode()).hexdigest()[:16]


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None
