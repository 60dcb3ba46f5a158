"""The training data: held-out test set is really held out, places come from the station data."""
from __future__ import annotations

from bot.core.tickets import CATEGORIES
from nlu import data as nd
from nlu.linear import INTENTS
from nlu.text import normalize


def _key(text: str) -> str:
    return "".join(ch for ch in normalize(text, {}) if ch.isalnum())


def test_held_out_intent_set_never_overlaps_training():
    train = {_key(e.text) for e in nd.load_intent_examples()}
    train |= {_key(e.text) for e in nd.load_rasa_examples(nd.CATEGORIES_FILE)}
    test = nd.load_rasa_examples(nd.TEST_INTENTS_FILE)
    assert len(test) >= 200
    assert [e.text for e in test if _key(e.text) in train] == []


def test_held_out_category_set_never_overlaps_training_and_covers_every_category():
    train = {_key(e.text) for e in nd.load_rasa_examples(nd.CATEGORIES_FILE)}
    train |= {_key(e.text) for e in nd.load_intent_examples()}
    test = nd.load_rasa_examples(nd.TEST_CATEGORIES_FILE)
    assert [e.text for e in test if _key(e.text) in train] == []
    assert {e.label for e in test} == set(CATEGORIES)


def test_every_intent_has_training_and_test_examples():
    train = {e.label for e in nd.load_intent_examples()}
    test = {e.label for e in nd.load_rasa_examples(nd.TEST_INTENTS_FILE)}
    assert train == set(INTENTS) == test


def test_annotations_are_stripped_with_offsets():
    text, ents = nd.strip_annotations("[松陵](place)的路灯，编号[1024](ticket)")
    assert text == "松陵的路灯，编号1024"
    assert ents == (("place", "松陵", 0, 2), ("ticket", "1024", 8, 12))


def test_place_table_from_station_csv(tmp_path):
    csv = tmp_path / "stations.csv"
    csv.write_text("code,name,kind,town,address,specialties,places\n"
                   "X-H,某某之家,家,同里镇,地址,,\n"
                   "X-01,站,站,同里镇,地址,,北联村;屯村社区;中心村\n", encoding="utf-8")
    table = nd.build_place_table(csv)
    assert {"同里镇", "北联村", "屯村社区", "中心村"} <= table.canonical
    surfaces = table.surfaces()
    assert surfaces["同里"] == "同里镇" and surfaces["北联"] == "北联村"
    assert "中心" not in surfaces  # an everyday word is never a place on its own


def test_committed_place_file_matches_the_station_data():
    if not nd.STATIONS_CSV.exists():
        return
    assert nd.load_places().surfaces() == nd.build_place_table(nd.STATIONS_CSV).surfaces()


def test_taxonomy_rows_become_short_category_examples(tmp_path):
    csv = tmp_path / "taxonomy.csv"
    csv.write_text("一级分类,二级分类,三级分类\n"
                   "交通运输,出租车管理,网约车问题\n"
                   "交通运输,其他,其他\n"
                   "商贸旅游,市场监管,其他\n"
                   "纪检监察,违纪,公款吃喝\n", encoding="utf-8")
    assert nd.read_taxonomy(CATEGORIES, csv) == [("出租车管理网约车问题", "交通运输"), ("市场监管", "商贸旅游")]
    assert nd.read_taxonomy(CATEGORIES, tmp_path / "absent.csv") == []
