"""The report form as pure data: slot order, pre-filling, validation, editing, serialisation."""
from __future__ import annotations

import json

import pytest

from bot.core.parse import ParseResult
from bot.core.people import Station, StationKind
from bot.core.tickets import Attachment
from bot.texts import Texts
from dialogues import report_form as rf
from dialogues.commands import find_rating, parse_rating, ticket_note, ticket_number
from dialogues.report_form import ReportForm, normalize_phone
from dialogues.words import Words


@pytest.fixture(scope="module")
def texts() -> Texts:
    return Texts.load()


@pytest.fixture(scope="module")
def words(texts: Texts) -> Words:
    return Words.from_texts(texts)


def parse(category: str | None = None, confidence: float = 0.9, places: tuple[str, ...] = (), phone: str = "") -> ParseResult:
    entities = [{"entity": "place", "value": p, "start": i * 10, "end": i * 10 + len(p)} for i, p in enumerate(places)]
    if phone:
        entities.append({"entity": "phone", "value": phone, "start": 50, "end": 61})
    result: dict = {"intent": {"name": "report_issue", "confidence": 0.95}, "entities": entities}
    if category:
        result["category"] = {"name": category, "confidence": confidence}
    return ParseResult.from_dict(result)


STATION = Station("S01", "松陵街道代表之家", StationKind.HOME, "松陵街道", places=("永康社区", "城南社区", "梅里村", "江村"))


def test_slots_are_asked_in_order_and_one_phone_answer_carries_the_consent(words: Words) -> None:
    form = rf.start_form("o1", words, text="村口的路灯坏了一个星期了", parse=parse("城乡建设"))
    assert (form.summary, form.category, form.step) == ("村口的路灯坏了一个星期了", "城乡建设", "where")
    assert rf.answer(form, "平望镇 庙头村", words).valid
    assert form.step == "details"
    rf.answer(form, "晚上很黑，老人走路不方便", words)
    assert form.step == "phone"
    rf.answer(form, "139 1234 5678", words)
    assert (form.phone, form.share_contact, form.step) == ("13912345678", True, "confirm")
    assert rf.answer(form, "确认", words).action == "submit"


@pytest.mark.parametrize(
    ("reply", "phone", "shared"),
    [("13912345678", "13912345678", True), ("13912345678 只给工作人员", "13912345678", False),
     ("只给工作人员：139-1234-5678", "13912345678", False), ("13912345678，不要告诉代表", "13912345678", False),
     ("不留", None, False), ("跳过", None, False)],
)
def test_the_phone_answer_says_who_may_see_the_number(words: Words, texts: Texts, reply: str,
                                                      phone: str | None, shared: bool) -> None:
    form = ReportForm("o1", summary="路灯坏了", place="平望镇", details_done=True)
    assert rf.answer(form, reply, words).valid
    assert (form.phone, form.share_contact, form.step) == (phone, shared, "confirm")
    key = "form_sum_no_phone" if phone is None else "form_sum_phone_shared" if shared else "form_sum_phone_private"
    assert texts.get(key, phone=phone) in rf.prompt(form, texts)


def test_the_phone_question_is_one_question_with_the_choices_in_it(texts: Texts) -> None:
    question = texts.get("form_ask_phone")
    assert "只给工作人员" in question and "不留" in question and "代表" in question
    assert "form_ask_consent" not in texts


def test_skipping_the_phone_skips_consent(words: Words) -> None:
    form = rf.start_form("o1", words, text="小区垃圾没人清理", parse=parse(places=("永康社区",)))
    rf.answer(form, "没有", words)  # details
    rf.answer(form, "跳过", words)  # phone
    assert (form.phone, form.share_contact, form.step) == (None, False, "confirm")


def test_a_place_in_the_first_message_is_not_asked_again(words: Words) -> None:
    form = rf.start_form("o1", words, text="松陵街道永康社区路灯坏了", parse=parse(places=("松陵街道", "永康社区")))
    assert (form.place, form.place_source, form.step) == ("松陵街道 永康社区", "entity", "details")


@pytest.mark.parametrize(
    ("text", "town", "place"),
    [("松陵街道永康社区的垃圾没人收", "松陵街道", "松陵街道永康社区"), ("平望镇庙头村口的路灯坏了", "平望镇", "平望镇庙头村"),
     ("松陵街道的村口路灯坏了", "松陵街道", "松陵街道"), ("盛泽镇有人乱倒垃圾", "盛泽镇", "盛泽镇")],
)
def test_a_village_right_after_a_recognised_town_is_kept(text: str, town: str, place: str) -> None:
    start = text.index(town)
    result = {"text": text, "entities": [{"entity": "place", "value": town, "start": start, "end": start + len(town)}]}
    assert rf.place_entities(ParseResult.from_dict(result)) == place


def test_places_are_kept_as_written_and_their_canonical_names_kept_for_routing() -> None:
    text = "松陵永康社区门口的路灯坏了"
    result = ParseResult.from_dict({"text": text, "entities": [
        {"entity": "place", "value": "松陵街道", "start": 0, "end": 2},
        {"entity": "place", "value": "永康社区", "start": 2, "end": 6}]})
    assert rf.place_entities(result) == "松陵永康社区"
    assert rf.place_names(result) == ["松陵街道", "永康社区"]
    far = ParseResult.from_dict({"text": "盛泽那边，就是前几天说的黎里", "entities": [
        {"entity": "place", "value": "盛泽镇", "start": 0, "end": 2},
        {"entity": "place", "value": "黎里镇", "start": 12, "end": 14}]})
    assert rf.place_entities(far) == "盛泽 黎里"


def test_a_scanned_station_routes_but_where_is_still_asked_with_its_places(words: Words, texts: Texts) -> None:
    form = rf.start_form("o1", words, text="路灯坏了好几天", parse=parse(), station=STATION)
    assert (form.place, form.step, form.qr_station_code, form.town) == ("", "where", "S01", "松陵街道")
    question = rf.prompt(form, texts)
    assert question == texts.get("form_ask_where_station", station="松陵街道代表之家", examples="永康社区、城南社区、梅里村")
    rf.answer(form, "城南社区3栋", words)
    assert (form.place, form.step, form.qr_station_code) == ("城南社区3栋", "details", "S01")
    named = rf.start_form("o1", words, text="平望镇路灯坏了", parse=parse(places=("平望镇",)), station=STATION)
    assert (named.place, named.qr_station_code) == ("平望镇", "S01")  # routing still sees the QR station
    bare_station = Station("S03", "盛泽镇法律调解联络站", StationKind.STATION, "盛泽镇")
    no_places = rf.start_form("o1", words, text="路灯坏了好几天", parse=parse(), station=bare_station)
    assert rf.prompt(no_places, texts) == texts.get("form_ask_where")


def test_a_bare_request_asks_what_happened(words: Words) -> None:
    form = rf.start_form("o1", words, text="我要反映一个问题", parse=parse())
    assert form.step == "what"
    outcome = rf.answer(form, "你好", words)
    assert not outcome.valid and form.step == "what"
    rf.answer(form, "河里有人倒垃圾", words, parse("环境保护"))
    assert (form.summary, form.category) == ("河里有人倒垃圾", "环境保护")


def test_a_long_letter_becomes_summary_and_details(words: Words) -> None:
    letter = "尊敬的代表：" + "我们小区门口的道路年久失修，下雨天积水严重，" * 5
    form = rf.start_form("o1", words, text=letter, parse=parse(places=("盛泽镇",)))
    assert form.summary.endswith("…") and len(form.summary) == rf.SUMMARY_MAX + 1
    assert form.details == letter and form.step == "phone"


def test_the_summary_of_a_long_letter_fits_one_wechat_reply(words: Words, texts: Texts) -> None:
    letter = "我们小区门口的道路年久失修，下雨天积水严重，" * 100
    form = rf.start_form("o1", words, text=letter, parse=parse(places=("盛泽镇",)))
    rf.answer(form, "跳过", words)
    assert form.details == letter[: rf.TEXT_MAX]
    assert len(rf.prompt(form, texts).encode()) < 2048


@pytest.mark.parametrize("reply", ["12345", "1391234567", "12912345678", "电话没有"])
def test_a_bad_phone_is_asked_again_with_an_example(words: Words, texts: Texts, reply: str) -> None:
    form = ReportForm("o1", summary="路灯坏了", place="平望镇", details_done=True)
    outcome = rf.answer(form, reply, words)
    assert not outcome.valid and form.step == "phone"
    assert "13912345678" in rf.render(outcome, form, texts)


@pytest.mark.parametrize(
    ("text", "phone"),
    [("13912345678", "13912345678"), ("+86 139-1234-5678", "13912345678"), ("我的电话是15851234567", "15851234567"),
     ("0512-63001234", "0512-63001234"), ("１３９１２３４５６７８", "13912345678")],
)
def test_mainland_numbers_are_recognised(text: str, phone: str) -> None:
    assert normalize_phone(text) == phone


@pytest.mark.parametrize("reply", ["跳过", "随便", "你们是干什么的", "好像还有点事"])
def test_at_confirm_anything_else_gets_the_short_instruction(words: Words, texts: Texts, reply: str) -> None:
    form = ReportForm("o1", summary="路灯坏了", place="平望镇", details_done=True, phone_done=True)
    outcome = rf.answer(form, reply, words)
    assert not outcome.valid and form.step == "confirm"
    assert rf.render(outcome, form, texts) == texts.get("form_confirm_again")


def test_at_confirm_a_late_number_or_staff_only_still_counts(words: Words) -> None:
    form = ReportForm("o1", summary="路灯坏了", place="平望镇", details_done=True, phone_done=True)
    assert rf.answer(form, "13912345678", words).valid
    assert (form.phone, form.share_contact, form.step) == ("13912345678", True, "confirm")
    assert rf.answer(form, "只给工作人员", words).valid
    assert (form.phone, form.share_contact, form.step) == ("13912345678", False, "confirm")


def test_the_summary_is_short_lines(words: Words, texts: Texts) -> None:
    form = ReportForm("o1", summary="路灯坏了", place="平望镇 庙头村", details="晚上很黑", details_done=True,
                      phone="13912345678", phone_done=True, share_contact=True, category="城乡建设")
    lines = rf.summary_lines(form, texts).splitlines()
    assert lines == [texts.get("form_sum_what", summary="路灯坏了"), texts.get("form_sum_where", place="平望镇 庙头村"),
                     texts.get("form_sum_details", details="晚上很黑"),
                     texts.get("form_sum_phone_shared", phone="13912345678"),
                     texts.get("form_sum_category", category="城乡建设")]
    assert all(len(line) <= 30 for line in lines)


def test_what_the_citizen_wrote_is_stored_as_written(words: Words) -> None:
    letter = "尊敬的代表：\n我们小区门口的道路年久失修，下雨天积水严重。\n" + "老人孩子出门都不方便，" * 5
    form = rf.start_form("o1", words, text=letter, parse=parse())
    assert form.details == letter.strip()  # line breaks and full-width punctuation kept
    short = rf.start_form("o1", words, text="路灯坏了，ＡＢ栋门口", parse=parse())
    assert short.summary == "路灯坏了，ＡＢ栋门口"
    short.place = "平望镇"
    rf.answer(short, "晚上很黑，  老人走路不方便！", words)
    assert short.details == "晚上很黑，  老人走路不方便！"


def test_cancel_works_at_every_step(words: Words) -> None:
    for form in (
        ReportForm("o1"),
        ReportForm("o1", summary="路灯坏了"),
        ReportForm("o1", summary="路灯坏了", place="平望镇"),
        ReportForm("o1", summary="路灯坏了", place="平望镇", details_done=True),
        ReportForm("o1", summary="路灯坏了", place="平望镇", details_done=True, phone="13912345678", phone_done=True),
        ReportForm("o1", summary="路灯坏了", place="平望镇", details_done=True, phone_done=True),
        ReportForm("o1", summary="路灯坏了", place="平望镇", details_done=True, phone_done=True, choosing_edit=True),
    ):
        assert rf.answer(form, "取消！", words).action == "cancel", form.step


def test_editing_a_slot_returns_to_the_summary(words: Words, texts: Texts) -> None:
    form = ReportForm("o1", summary="路灯坏了", place="平望镇", details_done=True, phone="13912345678",
                      phone_done=True, share_contact=True)
    assert rf.answer(form, "修改", words).action == "ask" and form.step == "edit"
    assert not rf.answer(form, "随便改改", words).valid
    rf.answer(form, "地点", words)
    assert form.step == "where"
    rf.answer(form, "黎里镇 东联村", words)
    assert (form.step, form.place) == ("confirm", "黎里镇 东联村")
    rf.answer(form, "不对", words)
    rf.answer(form, "电话", words)
    assert (form.step, form.phone, form.share_contact) == ("phone", None, False)
    rf.answer(form, "13800001111", words)
    assert form.step == "confirm"
    summary = rf.prompt(form, texts)
    assert "黎里镇 东联村" in summary and texts.get("form_sum_phone_shared", phone="13800001111") in summary


def test_details_may_change_an_unsure_category(words: Words) -> None:
    form = rf.start_form("o1", words, text="有个事情想说说", parse=parse("其他", 0.9))
    assert form.category == "其他"
    form.place = "八坼街道"
    rf.answer(form, "卫生院排队太久，医生太少", words, parse("卫生计生", 0.8))
    assert form.category == "卫生计生"
    rf.answer(form, "13912345678", words, parse("交通运输", 0.5))  # the phone step never changes it
    assert form.category == "卫生计生"


def test_unknown_or_unsure_categories_fall_back_to_other(words: Words) -> None:
    assert rf.start_form("o1", words, text="路灯坏了好几天", parse=parse("天气", 0.9)).category == "其他"
    assert rf.start_form("o1", words, text="路灯坏了好几天", parse=parse("城乡建设", 0.1)).category == "其他"
    assert rf.start_form("o1", words, text="路灯坏了好几天", parse=ParseResult.from_dict({})).category == "其他"


def test_photos_voice_and_location_are_attached_at_any_step(words: Words, texts: Texts) -> None:
    form = rf.start_form("o1", words, text="路灯坏了好几天", parse=parse(), station=STATION)
    note = rf.attach(form, Attachment("image", media_id="m1", url="http://p/1.jpg"))
    rf.attach(form, Attachment("image", media_id="m2"))
    assert note.params == {"count": 1}
    rf.attach(form, Attachment("location", text="江苏省苏州市吴江区松陵街道永康路"))
    assert (form.place, form.place_source, form.town) == ("江苏省苏州市吴江区松陵街道永康路", "location", "松陵街道")
    rf.attach(form, Attachment("voice", media_id="v1", text="就在学校门口"))
    assert [a.kind for a in form.attachment_objects()] == ["image", "image", "location", "voice"]
    form.details_done = form.phone_done = True
    assert "照片2张、位置1个、语音1条" in rf.prompt(form, texts)


def test_state_survives_json(words: Words) -> None:
    form = rf.start_form("o1", words, text="路灯坏了好几天", parse=parse("城乡建设"), attachment=Attachment("image", "m1"))
    again = ReportForm.from_data(json.loads(json.dumps(form.to_data())))
    assert again == form
    assert ReportForm.from_data({"openid": "o1", "summary": "x", "new_field": 1}).summary == "x"


@pytest.mark.parametrize(
    ("text", "number"),
    [("#1024", 1024), ("＃1024", 1024), ("# 1024", 1024), ("编号1024", 1024), ("1024号", 1024), ("查询#7", 7),
     ("#1024 谢谢", None), ("1024", None), ("我的诉求", None)],
)
def test_ticket_numbers(text: str, number: int | None) -> None:
    assert ticket_number(text) == number


@pytest.mark.parametrize(
    ("text", "note"),
    [("#1024 路灯还是不亮", (1024, "路灯还是不亮")), ("＃1024：谢谢代表", (1024, "谢谢代表")),
     ("编号1024 今天又坏了", (1024, "今天又坏了")), ("#1024", None), ("1024号楼漏水", None), ("路灯坏了", None)],
)
def test_ticket_notes(text: str, note: tuple[int, str] | None) -> None:
    assert ticket_note(text) == note


@pytest.mark.parametrize(
    ("text", "rating"),
    [("5", (5, "")), ("５分", (5, "")), ("5 处理很及时", (5, "处理很及时")), ("4，还行", (4, "还行")),
     ("五星", (5, "")), ("很满意", (5, "")), ("满意", (4, "")), ("一般", (3, "")), ("不满意 一直没人来", (2, "一直没人来")),
     ("很不满意", (1, "")), ("5号楼漏水", None), ("6", None), ("一般情况下", None), ("路灯又坏了", None)],
)
def test_ratings(words: Words, text: str, rating: tuple[int, str] | None) -> None:
    assert parse_rating(text, words) == rating


@pytest.mark.parametrize(
    ("text", "rating"),
    [("5 很及时，谢谢代表", (5, "很及时，谢谢代表")), ("５分　处理得好！", (5, "处理得好！")), ("满意，Ａ栋修好了", (4, "Ａ栋修好了"))],
)
def test_a_rating_comment_is_kept_as_written(words: Words, text: str, rating: tuple[int, str]) -> None:
    assert parse_rating(text, words) == rating


def test_a_note_is_kept_as_written() -> None:
    assert ticket_note("＃1024：谢谢代表，辛苦了！") == (1024, "谢谢代表，辛苦了！")


def test_a_rating_named_inside_a_sentence(words: Words) -> None:
    assert find_rating("很满意谢谢代表", words) == 5
    assert find_rating("打4分吧", words) == 4
    assert find_rating("谢谢", words) is None
