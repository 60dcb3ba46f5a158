"""Behaviour of the embedded engine on realistic messages that are not in the training data."""
from __future__ import annotations

import asyncio

import pytest

from bot.core.parse import ParseResult
from bot.core.tickets import CATEGORIES
from nlu import data as nd
from nlu.embedded import FALLBACK_INTENT
from nlu.linear import INTENTS


def _ents(result, kind):
    return [e["value"] for e in result["entities"] if e["entity"] == kind]


def _check_shape(result, text):
    assert result["text"] == text
    assert set(result) >= {"text", "intent", "entities", "intent_ranking", "category", "category_ranking"}
    assert result["intent"]["name"] in (*INTENTS, FALLBACK_INTENT)
    assert 0.0 <= result["intent"]["confidence"] <= 1.0
    assert result["category"]["name"] in CATEGORIES
    assert all(r["name"] in CATEGORIES for r in result["category_ranking"])
    for e in result["entities"]:
        assert set(e) >= {"entity", "value", "start", "end", "confidence"}
        assert 0 <= e["start"] < e["end"] <= len(text)


@pytest.mark.parametrize("text,intent", [
    ("我们小区后门那盏路灯坏掉半个月了，晚上黑乎乎的", "report_issue"),
    ("厂里老板三个月没发工资了，找谁都不管", "report_issue"),
    ("村口小河被养殖场的粪水污染了，臭得要命", "report_issue"),
    ("您好在吗", "greet"),
    ("好的谢谢你们", "thanks"),
    ("楼下仓库冒大火了快来人", "emergency"),
    ("一审判决不公平，我要上诉", "petition"),
    ("对养犬管理条例草案我有两点建议", "legislative_opinion"),
    ("#2048 现在处理到哪了", "check_status"),
    ("明天周末代表接待吗", "ask_schedule"),
    ("我们村的人大代表是哪位", "ask_deputy"),
    ("这个公众号能帮我做些什么", "ask_scope"),
    ("非常满意，五星", "rate"),
    ("今天苏州的天气热不热", "out_of_scope"),
    ("取消，不想报了", "cancel"),
])
def test_intents_of_unseen_messages(nlu, text, intent):
    result = nlu.parse_sync(text)
    _check_shape(result, text)
    assert result["intent"]["name"] == intent, result["intent_ranking"][:3]


@pytest.mark.parametrize("text,category", [
    ("小区门口的下水道堵了，污水漫到马路上", "城乡建设"),
    ("化工厂晚上偷偷往河里排废水", "环境保护"),
    ("公交车一小时才来一班，上班总迟到", "交通运输"),
    ("孩子户口不在本地，学校不让报名入学", "教育文体"),
    ("公司一直不给我们交社保，还拖欠工资", "劳动和社会保障"),
    ("商场的预付卡老板跑路了，钱退不回来", "商贸旅游"),
    ("社区医院挂号太难，排队要两个小时", "卫生计生"),
    ("村里的土地流转租金两年没发了", "农村农业"),
])
def test_categories_of_short_reports(nlu, text, category):
    assert nlu.parse_sync(text)["category"]["name"] == category


def test_category_of_a_real_long_letter_from_the_test_split(nlu, tipdm_test):
    hits = sum(nlu.parse_sync(t)["category"]["name"] == c for t, c in tipdm_test[:100])
    assert hits >= 80  # the full measurement is `zhitongche nlu eval`


def test_entities_place_ticket_phone_date_time(nlu):
    text = "我在松陵的南厍村，电话13912345678，想问编号1024的进度，下周三下午3点半能去联络站吗"
    r = nlu.parse_sync(text)
    assert _ents(r, "place") == ["松陵街道", "南厍村"]
    assert _ents(r, "phone") == ["13912345678"]
    assert _ents(r, "ticket") == ["1024"]
    assert _ents(r, "date") == ["next-W3"]
    assert _ents(r, "time") == ["15:30"]
    for e in r["entities"]:
        assert text[e["start"]:e["end"]]  # offsets point into the original text
    place = next(e for e in r["entities"] if e["value"] == "松陵街道")
    assert text[place["start"]:place["end"]] == "松陵"


@pytest.mark.parametrize("text,ticket", [("#1024", "1024"), ("查下 ＃77", "77"), ("1024号诉求", "1024"),
                                         ("单号：305", "305")])
def test_ticket_forms(nlu, text, ticket):
    assert _ents(nlu.parse_sync(text), "ticket") == [ticket]


@pytest.mark.parametrize("text", ["幸福路1024号的路灯坏了", "3号线地铁站", "12月3号有接待吗"])
def test_addresses_and_dates_are_not_tickets(nlu, text):
    assert _ents(nlu.parse_sync(text), "ticket") == []


def test_traditional_and_full_width_text_is_understood(nlu):
    text = "我們村口的路燈壞了一個星期了！！請幫忙處理（盛澤鎮）"
    r = nlu.parse_sync(text)
    assert r["intent"]["name"] == "report_issue"
    assert _ents(r, "place") == ["盛泽镇"]


@pytest.mark.parametrize("text", [
    "", "   ", "\n", "😀😀😀", "🔥🔥", "？？？", "ＡＢＣ１２３", "hello world 123 测试 mixed",
    "路" * 5000, "我们小区的问题。" * 700, "\x00\x01控制字符", "İstanbul 路灯", "\u200b\u200b", "ﷺ",
])
def test_bad_input_always_gives_a_valid_result(nlu, text):
    _check_shape(nlu.parse_sync(text), text)


def test_nothing_recognisable_falls_back_to_asking(nlu):
    for text in ("", "😀😀", "\u200b"):
        assert nlu.parse_sync(text)["intent"]["name"] == FALLBACK_INTENT


def test_non_string_input_does_not_raise(nlu):
    assert nlu.parse_sync(None)["intent"]["name"] == FALLBACK_INTENT  # type: ignore[arg-type]


def test_async_parse_is_the_same_as_sync(nlu):
    text = "代表你好，路灯坏了"
    result = asyncio.run(nlu.parse(text))
    assert result == ParseResult.from_dict(nlu.parse_sync(text))
    assert result.to_dict() == nlu.parse_sync(text)


def test_async_parse_of_a_long_letter_does_not_block_the_event_loop(nlu):
    """A long text is parsed in a worker thread: while it runs, the loop keeps serving other
    coroutines. The stand-in parse waits until a coroutine on the loop has run; parsed inline, it
    would block the loop and that coroutine could never run (the wait gives up, and it is reported)."""
    import threading

    from nlu.embedded import INLINE_MAX_CHARS, EmbeddedNLU

    engine = EmbeddedNLU(nlu.model)
    real = engine.parse_sync
    loop_served = threading.Event()
    seen: dict[str, object] = {}

    def parse_sync(text):
        if len(text) > INLINE_MAX_CHARS:
            seen["served_during_parse"] = loop_served.wait(timeout=30)
        seen.setdefault("threads", []).append(threading.get_ident())
        return real(text)

    engine.parse_sync = parse_sync  # type: ignore[method-assign]
    letter = "我们小区的路灯坏了很久，晚上出行很不方便。" * 250  # 5,000 characters

    async def main():
        parse = asyncio.create_task(engine.parse(letter))
        await asyncio.sleep(0)  # a short timer on the loop, served while the parse runs
        loop_served.set()
        result = await parse
        short = await engine.parse("路灯坏了")
        return result, short, threading.get_ident()

    result, short, loop_thread = asyncio.run(main())
    assert seen["served_during_parse"] is True
    long_thread, short_thread = seen["threads"]
    assert long_thread != loop_thread and short_thread == loop_thread  # short texts stay inline
    assert result.to_dict() == real(letter) and short.to_dict() == real("路灯坏了")


@pytest.mark.parametrize("text,civic", [
    ("小区路灯坏了", True), ("楼下饭店油烟太大", True), ("厂里拖欠工资", True), ("垃圾没人清运", True),
    ("放一首周杰伦的歌", False), ("明天去南京的车票", False), ("讲个笑话", False),
])
def test_civic_vocabulary_of_short_texts(nlu, text, civic):
    """The prior that leans short everyday chat away from report_issue only applies to texts
    without any civic vocabulary (learnt from the training examples)."""
    from collections import Counter

    from nlu.civic import is_short_and_not_civic
    from nlu.text import features, normalize

    norm = normalize(text)
    assert is_short_and_not_civic(norm, Counter(features(norm)), nlu.model.civic) is (not civic)


def test_long_texts_are_never_leaned_off_topic(nlu):
    from nlu.civic import CIVIC_PRIOR_MAX_CHARS, is_short_and_not_civic

    assert not is_short_and_not_civic("啊" * (CIVIC_PRIOR_MAX_CHARS + 1), {}, nlu.model.civic)


def test_entities_of_a_very_long_text_are_bounded(nlu):
    from nlu.entities import MAX_PER_KIND

    text = "松陵的路灯坏了，电话13912345678，12月3号下午3点。" * 400
    r = nlu.parse_sync(text)
    for kind in ("place", "phone", "date", "time"):
        assert 1 <= len(_ents(r, kind)) <= MAX_PER_KIND
    assert [e["start"] for e in r["entities"]] == sorted(e["start"] for e in r["entities"])


def test_build_nlu_embedded_is_the_cached_singleton(nlu):
    from bot.settings import Settings
    from nlu import build_nlu

    assert build_nlu(Settings(nlu_backend="embedded")) is nlu
    with pytest.raises(ValueError):
        build_nlu(Settings(nlu_backend="nonsense"))


# --- the hot path's shortcuts give exactly what the general code gives ----------------------------
def test_entity_quick_rejects_never_skip_a_match():
    import random

    from nlu import entities as E

    alphabet = list("0123456789一二两三十月日号点时分半刻上下中午晚早凌傍夜今明后昨大周星期礼拜天末这个本白里晨"
                    "-#:：/. 年编单诉求案工楼路") + ["٣"]
    rng = random.Random(7)
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(20000)]
    texts += [e.text for e in nd.load_intent_examples()]
    for t in texts:
        for pattern, cue in ((E._PHONE, E._NEEDS_DIGIT), (E._TICKET, E._NEEDS_DIGIT), (E._DATE, E._DATE_CUE),
                             (E._TIME, E._TIME_CUE)):
            assert not pattern.search(t) or cue.search(t), (t, pattern.pattern[:20])


def test_title_features_mark_the_opening_of_a_letter():
    from nlu.text import TITLE_CHARS, TITLE_PREFIX, features, normalize, title_features, words

    letter = normalize("某路公交车站撤了以后，我们附近几个村子的老人出门看病买菜都很难"
                       + "尊敬的领导:我们小区居民每天上班都要走很远。" * 5)
    opening = "".join(letter[:TITLE_CHARS].split())
    title = [f[len(TITLE_PREFIX):] for f in features(letter) if f.startswith(TITLE_PREFIX)]
    assert "公交" in title and "公交车" in title
    assert all(f in opening for f in title)  # nothing from beyond the opening
    assert not any("领导" in f for f in title)
    short = normalize("公交车站撤了")  # the whole text is its title: the words are reused, not cut again
    assert title_features(short, words(short)) == title_features(short)


def test_only_the_category_head_weighs_title_features(nlu):
    from nlu.text import TITLE_PREFIX

    model = nlu.model
    title_ids = [i for g, i in model.vocab.items() if g.startswith(TITLE_PREFIX)]
    assert title_ids
    assert not model.intent.parts[0].idf[title_ids].any()
    assert model.category.parts[0].idf[title_ids].any()


async def test_places_of_imported_stations_are_learnt_and_replaced(nlu):
    from bot.core.people import Station, StationKind
    from nlu.embedded import EmbeddedNLU

    engine = EmbeddedNLU(nlu.model)  # its own engine: the shared one stays as built
    text = "湖塘西村的河道里漂着很多垃圾，松陵也有"

    def places() -> list[tuple[str, str]]:
        return [(text[e["start"]:e["end"]], e["value"]) for e in engine.parse_sync(text)["entities"]
                if e["entity"] == "place"]

    assert places() == [("松陵", "松陵街道")]
    await engine.learn_places([Station("HT-01", "西村代表联络站", StationKind.STATION, "湖塘镇", places=("西村",))])
    assert places() == [("湖塘", "湖塘镇"), ("西村", "西村"), ("松陵", "松陵街道")]  # short forms too
    await engine.learn_places([])  # the stations were removed: only what the model was built with
    assert places() == [("松陵", "松陵街道")]
